package cli

import (
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
)

// terraform returns the Terraform configuration (HCL) of the table in: an
// aws_dynamodb_table resource with the same keys, attributes, global log
// index, billing and stream as CreateTable makes.
func terraform(in *dynamodb.CreateTableInput) []byte {
	f := hclwrite.NewEmptyFile()
	name := *in.TableName
	res := f.Body().AppendNewBlock("resource", []string{"aws_dynamodb_table", terraformLabel(name)}).Body()
	res.SetAttributeValue("name", cty.StringVal(name))
	res.SetAttributeValue("billing_mode", cty.StringVal(string(in.BillingMode)))
	if pt := in.ProvisionedThroughput; pt != nil {
		res.SetAttributeValue("read_capacity", cty.NumberIntVal(*pt.ReadCapacityUnits))
		res.SetAttributeValue("write_capacity", cty.NumberIntVal(*pt.WriteCapacityUnits))
	}
	for _, k := range in.KeySchema {
		key := "hash_key"
		if k.KeyType == types.KeyTypeRange {
			key = "range_key"
		}
		res.SetAttributeValue(key, cty.StringVal(*k.AttributeName))
	}
	if s := in.StreamSpecification; s != nil && s.StreamEnabled != nil && *s.StreamEnabled {
		res.SetAttributeValue("stream_enabled", cty.True)
		res.SetAttributeValue("stream_view_type", cty.StringVal(string(s.StreamViewType)))
	}
	for _, a := range in.AttributeDefinitions {
		res.AppendNewline()
		attr := res.AppendNewBlock("attribute", nil).Body()
		attr.SetAttributeValue("name", cty.StringVal(*a.AttributeName))
		attr.SetAttributeValue("type", cty.StringVal(string(a.AttributeType)))
	}
	for _, g := range in.GlobalSecondaryIndexes {
		res.AppendNewline()
		gsi := res.AppendNewBlock("global_secondary_index", nil).Body()
		gsi.SetAttributeValue("name", cty.StringVal(*g.IndexName))
		for _, k := range g.KeySchema {
			key := "hash_key"
			if k.KeyType == types.KeyTypeRange {
				key = "range_key"
			}
			gsi.SetAttributeValue(key, cty.StringVal(*k.AttributeName))
		}
		gsi.SetAttributeValue("projection_type", cty.StringVal(string(g.Projection.ProjectionType)))
		if pt := g.ProvisionedThroughput; pt != nil {
			gsi.SetAttributeValue("read_capacity", cty.NumberIntVal(*pt.ReadCapacityUnits))
			gsi.SetAttributeValue("write_capacity", cty.NumberIntVal(*pt.WriteCapacityUnits))
		}
	}
	return append([]byte(terraformHeader), hclwrite.Format(f.Bytes())...)
}

const terraformHeader = `# The DynamoDB table of an eventsource store (eventsource dynamodb create-table --terraform).
# The store's items, keys and global log index are described in the store/dynamodb package documentation.
`

var notLabel = regexp.MustCompile(`[^A-Za-z0-9_-]`)

// terraformLabel is a resource name for table name: letters, digits, _ and -,
// starting with a letter or _.
func terraformLabel(name string) string {
	l := notLabel.ReplaceAllString(name, "_")
	if l == "" || !strings.ContainsAny(l[:1], "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_") {
		l = "events_" + l
	}
	return l
}
