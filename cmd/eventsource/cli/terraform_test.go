package cli_test

import (
	"context"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"

	esdynamodb "github.com/eventsource-go/eventsource/store/dynamodb"
)

// The Terraform configuration as HashiCorp's HCL library reads it.
type tfFile struct {
	Resources []tfResource `hcl:"resource,block"`
}

type tfResource struct {
	Type           string        `hcl:"type,label"`
	Label          string        `hcl:"label,label"`
	Name           string        `hcl:"name"`
	BillingMode    string        `hcl:"billing_mode"`
	HashKey        string        `hcl:"hash_key"`
	RangeKey       string        `hcl:"range_key"`
	ReadCapacity   *int64        `hcl:"read_capacity,optional"`
	WriteCapacity  *int64        `hcl:"write_capacity,optional"`
	StreamEnabled  *bool         `hcl:"stream_enabled,optional"`
	StreamViewType *string       `hcl:"stream_view_type,optional"`
	Attributes     []tfAttribute `hcl:"attribute,block"`
	Indexes        []tfIndex     `hcl:"global_secondary_index,block"`
}

type tfAttribute struct {
	Name string `hcl:"name"`
	Type string `hcl:"type"`
}

type tfIndex struct {
	Name           string `hcl:"name"`
	HashKey        string `hcl:"hash_key"`
	RangeKey       string `hcl:"range_key"`
	ProjectionType string `hcl:"projection_type"`
	ReadCapacity   *int64 `hcl:"read_capacity,optional"`
	WriteCapacity  *int64 `hcl:"write_capacity,optional"`
}

func keyOf(ks []types.KeySchemaElement, kt types.KeyType) string {
	for _, k := range ks {
		if k.KeyType == kt {
			return *k.AttributeName
		}
	}
	return ""
}

// create-table --terraform prints, as HCL that parses, the table
// CreateTable makes: the same keys, attributes, index, billing and stream.
func TestTerraform(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		args []string
		opts esdynamodb.TableOptions
	}{
		{[]string{"--stream"}, esdynamodb.TableOptions{OnDemand: true, Stream: true}},
		{[]string{"--rcu", "3", "--wcu", "4"}, esdynamodb.TableOptions{RCU: 3, WCU: 4}},
	} {
		name := "bank.events"
		out, _, err := run(t, ctx, append([]string{"dynamodb", "create-table", "--name", name, "--terraform"}, tc.args...)...)
		if err != nil {
			t.Fatal(err)
		}
		f, diags := hclparse.NewParser().ParseHCL([]byte(out), "table.tf")
		if diags.HasErrors() {
			t.Fatalf("the HCL does not parse: %v\n%s", diags, out)
		}
		var file tfFile
		if diags := gohcl.DecodeBody(f.Body, nil, &file); diags.HasErrors() {
			t.Fatalf("the HCL is not one aws_dynamodb_table: %v\n%s", diags, out)
		}
		want := esdynamodb.TableInput(name, tc.opts)
		if len(file.Resources) != 1 {
			t.Fatalf("%d resources", len(file.Resources))
		}
		r := file.Resources[0]
		if r.Type != "aws_dynamodb_table" || r.Label != "bank_events" || r.Name != name || r.BillingMode != string(want.BillingMode) ||
			r.HashKey != keyOf(want.KeySchema, types.KeyTypeHash) || r.RangeKey != keyOf(want.KeySchema, types.KeyTypeRange) {
			t.Fatalf("resource %+v, want the table of %+v", r, want)
		}
		if tc.opts.OnDemand != (r.ReadCapacity == nil) || !tc.opts.OnDemand && (*r.ReadCapacity != 3 || *r.WriteCapacity != 4) {
			t.Fatalf("capacity %v/%v for %+v", r.ReadCapacity, r.WriteCapacity, tc.opts)
		}
		if tc.opts.Stream != (r.StreamEnabled != nil && *r.StreamEnabled) || tc.opts.Stream && *r.StreamViewType != "NEW_IMAGE" {
			t.Fatalf("stream %v %v for %+v", r.StreamEnabled, r.StreamViewType, tc.opts)
		}
		var attrs, wantAttrs []string
		for _, a := range r.Attributes {
			attrs = append(attrs, a.Name+":"+a.Type)
		}
		for _, a := range want.AttributeDefinitions {
			wantAttrs = append(wantAttrs, *a.AttributeName+":"+string(a.AttributeType))
		}
		slices.Sort(attrs)
		slices.Sort(wantAttrs)
		if !slices.Equal(attrs, wantAttrs) {
			t.Fatalf("attributes %v, want %v", attrs, wantAttrs)
		}
		g, wg := r.Indexes, want.GlobalSecondaryIndexes
		if len(g) != 1 || g[0].Name != *wg[0].IndexName || g[0].HashKey != keyOf(wg[0].KeySchema, types.KeyTypeHash) ||
			g[0].RangeKey != keyOf(wg[0].KeySchema, types.KeyTypeRange) || g[0].ProjectionType != "ALL" ||
			tc.opts.OnDemand != (g[0].ReadCapacity == nil) {
			t.Fatalf("index %+v, want %+v", g, wg)
		}
	}
	if _, _, err := run(t, ctx, "dynamodb", "create-table", "--terraform"); err == nil {
		t.Fatal("--terraform without --name succeeded")
	}
}
