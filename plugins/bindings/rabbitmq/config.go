package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/outrigger/outrigger/plugins/internal/amqpclient"
	"github.com/outrigger/outrigger/plugins/sdk"
)

// config is the parsed component metadata.
type config struct {
	client      amqpclient.Config
	queue       amqpclient.Queue
	contentType string // default content type of published messages
}

// metadataKeys are the component metadata keys the binding reads (the
// README documents each).
var metadataKeys = []string{"queueName", "host", "connectionString", "durable", "deleteWhenUnused", "exclusive",
	"prefetchCount", "ttlInSeconds", "maxPriority", "contentType", "deliveryMode", "concurrencyMode",
	"requeueInFailure", "publisherConfirm", "heartBeat", "clientName", "reconnectWait", "direction", "route"}

// unsupportedKeys are Dapr keys the binding cannot honour; it refuses them
// rather than connect differently than asked.
var unsupportedKeys = []string{"caCert", "clientCert", "clientKey", "externalSasl", "saslExternal"}

func parse(md sdk.Metadata) (config, error) {
	var c config
	if strings.TrimSpace(md["host"]) == "" && strings.TrimSpace(md["connectionString"]) == "" && strings.TrimSpace(md["hostname"]) == "" {
		return c, errors.New("metadata host is required (amqp://user:pass@host:5672)")
	}
	for _, k := range unsupportedKeys {
		if strings.TrimSpace(md[k]) != "" {
			return c, fmt.Errorf("metadata %s is not supported (use an amqps:// URL whose server certificate the system trusts)", k)
		}
	}
	cc, err := amqpclient.ParseConfig(md)
	if err != nil {
		return c, err
	}
	// Dapr's binding handles one message at a time unless told otherwise.
	if strings.TrimSpace(md["concurrencyMode"]) == "" {
		cc.Single = true
	}
	q := amqpclient.Queue{Name: strings.TrimSpace(md["queueName"]), Durable: cc.Durable, AutoDelete: cc.DeletedWhenUnused}
	if q.Name == "" {
		return c, errors.New("metadata queueName is required")
	}
	if q.AutoDelete, err = parseBool(md, "deleteWhenUnused", q.AutoDelete); err != nil {
		return c, err
	}
	if q.Exclusive, err = parseBool(md, "exclusive", false); err != nil {
		return c, err
	}
	if v := strings.TrimSpace(md["ttlInSeconds"]); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return c, fmt.Errorf("metadata ttlInSeconds=%q: want a whole number of seconds (0 = no expiry)", v)
		}
		q.MessageTTL = time.Duration(n) * time.Second
	}
	// The TTL is the queue's (x-message-ttl), as in Dapr, not a per-message
	// expiration set on publish.
	cc.TTL = 0
	if v := strings.TrimSpace(md["maxPriority"]); v != "" {
		n, err := strconv.ParseUint(v, 10, 8)
		if err != nil {
			return c, fmt.Errorf("metadata maxPriority=%q: want 0 to 255", v)
		}
		p := uint8(n)
		q.MaxPriority = &p
	}
	if v := strings.TrimSpace(md["reconnectWait"]); v != "" {
		if _, err := time.ParseDuration(v); err != nil {
			if _, err := strconv.Atoi(v); err != nil {
				return c, fmt.Errorf("metadata reconnectWait=%q: want a duration such as \"5s\"", v)
			}
		}
	}
	c.client, c.queue, c.contentType = cc, q, strings.TrimSpace(md["contentType"])
	return c, nil
}

func parseBool(md sdk.Metadata, key string, def bool) (bool, error) {
	v := strings.TrimSpace(md[key])
	if v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return def, fmt.Errorf("metadata %s=%q: want true or false", key, v)
	}
	return b, nil
}
