package main

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/outrigger/outrigger/plugins/sdk"
	"github.com/outrigger/outrigger/plugins/sdk/sdktest"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

func newBroker() sdk.PubSub { return New(discard) }

// cluster starts franz-go's in-process Kafka (kfake): three brokers, topics
// created on first use with three partitions, messages up to 4 MiB.
func cluster(t *testing.T) string {
	t.Helper()
	c, err := kfake.NewCluster(
		kfake.NumBrokers(3),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(3),
		kfake.BrokerConfigs(map[string]string{"message.max.bytes": "4194304"}),
	)
	if err != nil {
		t.Fatalf("starting kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

func TestConformance(t *testing.T) {
	md := sdk.Metadata{
		"brokers":              cluster(t),
		"initialOffset":        "oldest",
		"maxMessageBytes":      "2097152",
		"heartbeatInterval":    "100ms",
		"sessionTimeout":       "6s",
		"consumeRetryInterval": "50ms",
		"commitInterval":       "100ms",
	}
	sdktest.ExercisePubSub(t, newBroker, md, sdktest.Ordered(),
		sdktest.RedeliveryWithin(10*time.Second), sdktest.ReadyWithin(10*time.Second))
}

func TestInitErrors(t *testing.T) {
	addr := cluster(t)
	cases := map[string]sdk.Metadata{
		"no brokers":            {"consumerID": "g"},
		"no group":              {"brokers": addr},
		"bad auth type":         {"brokers": addr, "consumerID": "g", "authType": "oidc"},
		"password without user": {"brokers": addr, "consumerID": "g", "authType": "password"},
		"bad mechanism":         {"brokers": addr, "consumerID": "g", "authType": "password", "saslUsername": "u", "saslMechanism": "GSSAPI"},
		"bad initial offset":    {"brokers": addr, "consumerID": "g", "initialOffset": "middle"},
		"bad max bytes":         {"brokers": addr, "consumerID": "g", "maxMessageBytes": "lots"},
		"tiny max bytes":        {"brokers": addr, "consumerID": "g", "maxMessageBytes": "10"},
		"bad duration":          {"brokers": addr, "consumerID": "g", "sessionTimeout": "soon"},
		"heartbeat too long":    {"brokers": addr, "consumerID": "g", "heartbeatInterval": "10s", "sessionTimeout": "5s"},
		"unreachable":           {"brokers": "127.0.0.1:1", "consumerID": "g", "dialTimeout": "200ms"},
	}
	for name, md := range cases {
		t.Run(name, func(t *testing.T) {
			b := newBroker()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := b.Init(ctx, md); err == nil {
				t.Fatalf("Init(%v) succeeded, want an error", md)
			}
			_ = b.(sdk.Closer).Close()
		})
	}
}
