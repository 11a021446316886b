package main

import (
	"fmt"
	"strings"

	"github.com/outrigger/outrigger/plugins/internal/kafkaclient"
	"github.com/outrigger/outrigger/plugins/sdk"
)

// config is the parsed component metadata.
type config struct {
	client       kafkaclient.Config
	topics       []string // input
	publishTopic string   // output
}

// metadataKeys are the component metadata keys the binding reads (the
// README documents each).
var metadataKeys = []string{"brokers", "topics", "publishTopic", "consumerGroup", "consumerID", "clientID",
	"authType", "saslUsername", "saslPassword", "saslMechanism", "disableTls", "skipVerify", "initialOffset",
	"maxMessageBytes", "heartbeatInterval", "sessionTimeout", "consumeRetryInterval", "commitInterval",
	"dialTimeout", "direction", "route"}

func parse(md sdk.Metadata) (config, error) {
	cc, err := kafkaclient.ParseConfig(md)
	if err != nil {
		return config{}, err
	}
	c := config{client: cc, publishTopic: strings.TrimSpace(md["publishTopic"])}
	for _, tp := range strings.Split(md["topics"], ",") {
		if tp = strings.TrimSpace(tp); tp != "" {
			c.topics = append(c.topics, tp)
		}
	}
	if strings.ContainsAny(c.publishTopic, " ,") {
		return c, fmt.Errorf("metadata publishTopic=%q: one topic name", c.publishTopic)
	}
	return c, nil
}
