package client_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
)

// One page at a time, as the HTTP API serves it: the token of a page
// fetches the next.
func ExampleClient_ListInstances() {
	var c *client.Client // client.New(dispatcher), as in the package example
	ctx := context.Background()
	q := client.Query{
		RuntimeStatus:   []jetflow.RuntimeStatus{jetflow.StatusFailed},
		CreatedTimeFrom: time.Now().Add(-24 * time.Hour),
		Top:             50,
	}
	page, err := c.ListInstances(ctx, q)
	if err != nil {
		log.Fatal(err)
	}
	for _, st := range page.Instances {
		fmt.Println(st.InstanceID, st.Name, string(st.Output))
	}
	if page.ContinuationToken != "" {
		q.ContinuationToken = page.ContinuationToken
		// c.ListInstances(ctx, q) returns the next page.
	}
}

// Every instance whose id starts with "order-", whatever the number of
// pages.
func ExampleClient_ListAll() {
	var c *client.Client // client.New(dispatcher), as in the package example
	defer c.Close()      // stops the index the first list started
	for st, err := range c.ListAll(context.Background(), client.Query{InstanceIDPrefix: "order-", OmitInput: true}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(st.InstanceID, st.RuntimeStatus)
	}
}
