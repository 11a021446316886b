package main

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/outrigger/outrigger/plugins/sdk"
)

// config is the parsed component metadata (Dapr pubsub.mqtt3 names).
type config struct {
	url           *url.URL
	consumerID    string
	clientID      string // base of every connection's client id
	qos           byte
	retain        bool
	cleanSession  bool
	sessionExpiry time.Duration
	keepAlive     time.Duration
	retryInterval time.Duration // first pause before re-offering a nacked message
	tls           *tls.Config
	username      string
	password      string
}

func parse(md sdk.Metadata) (config, error) {
	c := config{qos: 1, sessionExpiry: time.Hour, keepAlive: 30 * time.Second, retryInterval: 100 * time.Millisecond}
	raw := strings.TrimSpace(md["url"])
	if raw == "" {
		return c, errors.New("metadata url is required (tcp://host:1883, ssl://host:8883)")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return c, fmt.Errorf("metadata url=%q: want scheme://host:port", raw)
	}
	switch u.Scheme {
	case "tcp", "mqtt":
		u.Scheme = "mqtt"
	case "ssl", "tls", "mqtts", "tcps":
		u.Scheme = "tls"
		c.tls = &tls.Config{MinVersion: tls.VersionTLS12}
	default:
		return c, fmt.Errorf("metadata url=%q: scheme must be tcp, mqtt, ssl, tls or mqtts", raw)
	}
	if u.User != nil {
		c.username = u.User.Username()
		c.password, _ = u.User.Password()
		u.User = nil
	}
	c.url = u
	c.consumerID = strings.TrimSpace(md[sdk.ConsumerIDKey])
	if c.consumerID == "" {
		return c, errors.New("metadata consumerID is required (the host sets it to the app id)")
	}
	if strings.ContainsAny(c.consumerID, "/+#") {
		return c, fmt.Errorf("metadata consumerID=%q: must not contain / + or # (it names the shared subscription)", c.consumerID)
	}
	c.clientID = strings.TrimSpace(md["clientID"])
	if c.clientID == "" {
		// Unique per component instance, so instances of one app do not
		// take over each other's sessions; set clientID for sessions that
		// outlive the plugin process.
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		c.clientID = c.consumerID + "-" + hex.EncodeToString(b)
	}
	p := parser{md: md}
	switch q := strings.TrimSpace(md["qos"]); q {
	case "", "1":
	case "0", "2":
		c.qos = q[0] - '0'
	default:
		return c, fmt.Errorf("metadata qos=%q: want 0, 1 or 2", q)
	}
	c.retain = p.bool("retain", false)
	c.cleanSession = p.bool("cleanSession", false)
	c.sessionExpiry = p.duration("sessionExpiry", c.sessionExpiry)
	c.keepAlive = p.duration("keepAlive", c.keepAlive)
	c.retryInterval = p.duration("retryInterval", c.retryInterval)
	if p.err != nil {
		return c, p.err
	}
	if ca := md["caCert"]; ca != "" {
		if c.tls == nil {
			return c, errors.New("metadata caCert needs an ssl:// or tls:// url")
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(ca)) {
			return c, errors.New("metadata caCert: no PEM certificate found")
		}
		c.tls.RootCAs = pool
	}
	if cert, key := md["clientCert"], md["clientKey"]; cert != "" || key != "" {
		if c.tls == nil {
			return c, errors.New("metadata clientCert/clientKey need an ssl:// or tls:// url")
		}
		pair, err := tls.X509KeyPair([]byte(cert), []byte(key))
		if err != nil {
			return c, fmt.Errorf("metadata clientCert/clientKey: %w", err)
		}
		c.tls.Certificates = []tls.Certificate{pair}
	}
	switch {
	case c.sessionExpiry < 0 || c.sessionExpiry > time.Duration(^uint32(0))*time.Second:
		return c, fmt.Errorf("metadata sessionExpiry=%v: out of range", c.sessionExpiry)
	case c.keepAlive < time.Second || c.keepAlive > 65535*time.Second:
		return c, fmt.Errorf("metadata keepAlive=%v: want 1s to 65535s", c.keepAlive)
	case c.retryInterval <= 0:
		return c, errors.New("metadata retryInterval must be positive")
	}
	return c, nil
}

// parser reads typed values from metadata, keeping the first error.
type parser struct {
	md  sdk.Metadata
	err error
}

func (p *parser) bool(key string, def bool) bool {
	v := strings.TrimSpace(p.md[key])
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil && p.err == nil {
		p.err = fmt.Errorf("metadata %s=%q: want true or false", key, v)
	}
	if err != nil {
		return def
	}
	return b
}

// duration accepts a Go duration ("5s") or an integer of seconds.
func (p *parser) duration(key string, def time.Duration) time.Duration {
	v := strings.TrimSpace(p.md[key])
	if v == "" {
		return def
	}
	if d, err := time.ParseDuration(v); err == nil {
		return d
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		if p.err == nil {
			p.err = fmt.Errorf("metadata %s=%q: want a duration such as \"30s\" or an integer of seconds", key, v)
		}
		return def
	}
	return time.Duration(n) * time.Second
}
