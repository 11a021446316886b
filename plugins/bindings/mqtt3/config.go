package main

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/outrigger/outrigger/plugins/sdk"
)

// config is the parsed component metadata (Dapr's bindings.mqtt3 names).
type config struct {
	url               *url.URL
	topic             string
	clientID          string
	qos               byte
	retain            bool
	cleanSession      bool
	backOffMaxRetries int
	retryDelay        time.Duration
	tls               *tls.Config
}

// metadataKeys are the component metadata keys parse reads.
var metadataKeys = []string{"url", "topic", "consumerID", "qos", "retain", "cleanSession", "backOffMaxRetries",
	"caCert", "clientCert", "clientKey", "direction", "route"}

func parse(md sdk.Metadata) (config, error) {
	c := config{qos: 1, retryDelay: 200 * time.Millisecond}
	raw := strings.TrimSpace(md["url"])
	if raw == "" {
		return c, fmt.Errorf("metadata url is required (e.g. tcp://127.0.0.1:1883)")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return c, fmt.Errorf("metadata url %q: want scheme://host:port", raw)
	}
	switch u.Scheme {
	case "tcp", "mqtt":
		u.Scheme = "mqtt"
	case "ssl", "tls", "mqtts", "tcps":
		u.Scheme = "tls"
	case "ws", "wss":
	default:
		return c, fmt.Errorf("metadata url %q: unknown scheme %q (tcp, mqtt, ssl, tls, ws, wss)", raw, u.Scheme)
	}
	c.url = u
	c.topic = strings.TrimSpace(md["topic"])
	if c.topic == "" {
		return c, fmt.Errorf("metadata topic is required")
	}
	c.clientID = strings.TrimSpace(md["consumerID"])
	if c.clientID == "" {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		c.clientID = "outrigger-" + hex.EncodeToString(b)
	}
	if v := strings.TrimSpace(md["qos"]); v != "" {
		q, err := strconv.Atoi(v)
		if err != nil || q < 0 || q > 2 {
			return c, fmt.Errorf("metadata qos=%q: want 0, 1 or 2", v)
		}
		c.qos = byte(q)
	}
	for _, b := range []struct {
		key string
		dst *bool
	}{{"retain", &c.retain}, {"cleanSession", &c.cleanSession}} {
		if v := strings.TrimSpace(md[b.key]); v != "" {
			if *b.dst, err = strconv.ParseBool(v); err != nil {
				return c, fmt.Errorf("metadata %s=%q: want true or false", b.key, v)
			}
		}
	}
	if v := strings.TrimSpace(md["backOffMaxRetries"]); v != "" {
		if c.backOffMaxRetries, err = strconv.Atoi(v); err != nil || c.backOffMaxRetries < -1 {
			return c, fmt.Errorf("metadata backOffMaxRetries=%q: want a whole number (-1 = forever)", v)
		}
	}
	if ca, cert, key := md["caCert"], md["clientCert"], md["clientKey"]; ca != "" || cert != "" || key != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if ca != "" {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM([]byte(ca)) {
				return c, fmt.Errorf("metadata caCert: no PEM certificate found")
			}
			tc.RootCAs = pool
		}
		if (cert == "") != (key == "") {
			return c, fmt.Errorf("metadata clientCert and clientKey go together")
		}
		if cert != "" {
			pair, err := tls.X509KeyPair([]byte(cert), []byte(key))
			if err != nil {
				return c, fmt.Errorf("metadata clientCert/clientKey: %w", err)
			}
			tc.Certificates = []tls.Certificate{pair}
		}
		c.tls = tc
	}
	return c, nil
}
