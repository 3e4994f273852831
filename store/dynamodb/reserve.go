package dynamodb

import (
	"context"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/eventsource-go/eventsource/storekit"
)

// attrOwner holds a reservation's owner.
const attrOwner = "o"

// reservationKey is the item of one reservation: the scope's length keeps
// (scope, value) pairs apart whatever bytes they hold.
func reservationKey(scope, value string) map[string]types.AttributeValue {
	return key("r#"+strconv.Itoa(len(scope))+"#"+scope+value, 0)
}

func (s *Store) reservations() storekit.Reservations {
	return storekit.Reservations{
		Insert: func(ctx context.Context, scope, value, owner string) (bool, error) {
			if err := s.check(ctx); err != nil {
				return false, err
			}
			item := reservationKey(scope, value)
			item[attrOwner] = str(owner)
			_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{
				TableName: aws.String(s.table), Item: item,
				ConditionExpression: aws.String("attribute_not_exists(pk)"),
			})
			if isConditionFailed(err) {
				return false, nil
			}
			if err != nil {
				return false, s.wrap(err, "reserve %s %q", scope, value)
			}
			return true, nil
		},
		Delete: func(ctx context.Context, scope, value, owner string) (bool, error) {
			if err := s.check(ctx); err != nil {
				return false, err
			}
			_, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
				TableName: aws.String(s.table), Key: reservationKey(scope, value),
				ConditionExpression:       aws.String("#o = :o"),
				ExpressionAttributeNames:  map[string]string{"#o": attrOwner},
				ExpressionAttributeValues: map[string]types.AttributeValue{":o": str(owner)},
			})
			if isConditionFailed(err) {
				return false, nil
			}
			if err != nil {
				return false, s.wrap(err, "release %s %q", scope, value)
			}
			return true, nil
		},
		Owner: func(ctx context.Context, scope, value string) (string, bool, error) {
			if err := s.check(ctx); err != nil {
				return "", false, err
			}
			out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
				TableName: aws.String(s.table), Key: reservationKey(scope, value), ConsistentRead: aws.Bool(true),
			})
			if err != nil {
				return "", false, s.wrap(err, "reservation %s %q", scope, value)
			}
			owner, ok := getS(out.Item, attrOwner)
			return owner, ok, nil
		},
	}
}

// Reserve implements eventsource.Reserver with a conditional PutItem.
func (s *Store) Reserve(ctx context.Context, scope, value, owner string) error {
	return s.reservations().Reserve(ctx, scope, value, owner)
}

// Release implements eventsource.Reserver with a conditional DeleteItem.
func (s *Store) Release(ctx context.Context, scope, value, owner string) error {
	return s.reservations().Release(ctx, scope, value, owner)
}

// Owner implements eventsource.Reserver with a consistent GetItem.
func (s *Store) Owner(ctx context.Context, scope, value string) (string, error) {
	return s.reservations().Get(ctx, scope, value)
}
