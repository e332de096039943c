package main

import "github.com/perfhound/perfhound/agent/ingest"

// newIngest wires a Receiver and its Handler as the agent does.
func newIngest() (*ingest.Receiver, *ingest.Handler) {
	recv := &ingest.Receiver{}
	return recv, recv.Handler(ingest.Options{})
}
