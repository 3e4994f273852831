package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	esdynamodb "github.com/eventsource-go/eventsource/store/dynamodb"
)

func dynamodbCmd() *cobra.Command {
	var endpoint, region string
	cmd := group(&cobra.Command{
		Use:   "dynamodb",
		Short: "Create and delete the DynamoDB table of an event store",
		Long: `The DynamoDB store keeps its events in one table with a global secondary index.
These commands create or delete that table and wait until it is ready or gone.
Credentials and region come from the usual AWS sources; with --endpoint (a
local server such as dynalite) dummy credentials are used.`,
	})
	cmd.PersistentFlags().StringVar(&endpoint, "endpoint", "", "DynamoDB API endpoint, e.g. http://127.0.0.1:4567 (default: AWS)")
	cmd.PersistentFlags().StringVar(&region, "region", "", "AWS region (default: from the AWS configuration; us-east-1 with --endpoint)")

	var name string
	var rcu, wcu int64
	var onDemand, stream, tf bool
	create := &cobra.Command{
		Use:   "create-table",
		Short: "Create the table and wait until it is active",
		Long: `create-table creates the store's table (keys, the global log index, billing,
and with --stream the table's DynamoDB stream, new images, for a Lambda
function that forwards the committed events) and waits until it is active.
With --terraform it prints the same table as Terraform configuration (an
aws_dynamodb_table resource) instead, and calls no AWS API.`,
		Example: `  eventsource dynamodb create-table --name bank --endpoint http://127.0.0.1:4567
  eventsource dynamodb create-table --name bank --region eu-west-1 --rcu 10 --wcu 10
  eventsource dynamodb create-table --name bank --stream --terraform > bank_table.tf`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			provisioned := cmd.Flags().Changed("rcu") || cmd.Flags().Changed("wcu")
			switch {
			case name == "":
				return usagef("--name is required")
			case provisioned && onDemand:
				return usagef("--on-demand and --rcu/--wcu: a table is either on demand or provisioned")
			case provisioned && (rcu <= 0 || wcu <= 0):
				return usagef("--rcu %d --wcu %d: give both, positive (or --on-demand)", rcu, wcu)
			case !provisioned:
				onDemand = true
			}
			opts := esdynamodb.TableOptions{OnDemand: onDemand, RCU: rcu, WCU: wcu, Stream: stream}
			if tf {
				_, err := cmd.OutOrStdout().Write(terraform(esdynamodb.TableInput(name, opts)))
				return err
			}
			client, err := esdynamodb.NewClient(cmd.Context(), endpoint, region)
			if err != nil {
				return err
			}
			mode := "on demand"
			if !onDemand {
				mode = fmt.Sprintf("%d RCU, %d WCU", rcu, wcu)
			}
			start := time.Now()
			if err := esdynamodb.CreateTable(cmd.Context(), client, name, opts); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "table %q is active (%s, created in %s)\n", name, mode, time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	create.Flags().StringVar(&name, "name", "", "table name (required)")
	create.Flags().Int64Var(&rcu, "rcu", 0, "provisioned read capacity units")
	create.Flags().Int64Var(&wcu, "wcu", 0, "provisioned write capacity units")
	create.Flags().BoolVar(&onDemand, "on-demand", false, "pay per request (the default when no capacity is given)")
	create.Flags().BoolVar(&stream, "stream", false, "turn the table's DynamoDB stream on (new images), for a Lambda function that forwards the events")
	create.Flags().BoolVar(&tf, "terraform", false, "print the table as Terraform configuration (HCL) instead of creating it")

	var delName string
	del := &cobra.Command{
		Use:     "delete-table",
		Short:   "Delete the table and wait until it is gone",
		Example: `  eventsource dynamodb delete-table --name bank --endpoint http://127.0.0.1:4567`,
		Args:    usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if delName == "" {
				return usagef("--name is required")
			}
			client, err := esdynamodb.NewClient(cmd.Context(), endpoint, region)
			if err != nil {
				return err
			}
			if err := esdynamodb.DeleteTable(cmd.Context(), client, delName); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "table %q is gone\n", delName)
			return nil
		},
	}
	del.Flags().StringVar(&delName, "name", "", "table name (required)")
	cmd.AddCommand(create, del)
	return cmd
}
