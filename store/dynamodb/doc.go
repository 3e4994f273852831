// Package dynamodb is an eventsource.Store in one Amazon DynamoDB table (AWS
// SDK for Go v2). The full design, its proof sketch, limits and costs are
// documented below as they are written.
package dynamodb
