package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/outrigger/outrigger/plugins/sdk"
)

// Binding is the bindings.http output binding.
type Binding struct {
	md     config
	client *http.Client
}

type config struct {
	url                 string
	headers             map[string]string
	securityToken       string
	securityTokenHeader string
	errorIfNot2XX       bool
	maxResponseBodySize int64
	timeout             time.Duration
	tls                 *tls.Config
}

// metadataKeys are the component metadata keys parse reads.
var metadataKeys = []string{"url", "headers", "securityToken", "securityTokenHeader", "errorIfNot2XX", "responseTimeout",
	"maxResponseBodySize", "insecureSkipVerify", "MTLSRootCA", "MTLSClientCert", "MTLSClientKey", "direction"}

// New returns an uninitialised HTTP binding.
func New() *Binding { return &Binding{} }

// pemOrFile returns v itself when it is PEM, else the contents of the file it names.
func pemOrFile(key, v string) ([]byte, error) {
	if strings.Contains(v, "-----BEGIN") {
		return []byte(v), nil
	}
	b, err := os.ReadFile(v)
	if err != nil {
		return nil, fmt.Errorf("metadata %s: neither PEM nor a readable file: %w", key, err)
	}
	return b, nil
}

func parseBool(md sdk.Metadata, key string, def bool) (bool, error) {
	v, ok := md[key]
	if !ok || strings.TrimSpace(v) == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		return false, fmt.Errorf("metadata %s: %q is not a boolean", key, v)
	}
	return b, nil
}

func parse(md sdk.Metadata) (config, error) {
	c := config{securityTokenHeader: "", maxResponseBodySize: 100 << 20}
	c.url = strings.TrimSpace(md["url"])
	if c.url == "" {
		return c, fmt.Errorf("metadata url is required")
	}
	u, err := url.Parse(c.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return c, fmt.Errorf("metadata url %q: want an absolute http:// or https:// URL", c.url)
	}
	if h := strings.TrimSpace(md["headers"]); h != "" {
		if err := json.Unmarshal([]byte(h), &c.headers); err != nil {
			return c, fmt.Errorf("metadata headers: want a JSON object of strings: %w", err)
		}
	}
	c.securityToken = md["securityToken"]
	c.securityTokenHeader = md["securityTokenHeader"]
	if c.securityToken != "" && c.securityTokenHeader == "" {
		return c, fmt.Errorf("metadata securityTokenHeader is required with securityToken")
	}
	if c.errorIfNot2XX, err = parseBool(md, "errorIfNot2XX", true); err != nil {
		return c, err
	}
	if v := strings.TrimSpace(md["responseTimeout"]); v != "" {
		if c.timeout, err = time.ParseDuration(v); err != nil || c.timeout < 0 {
			return c, fmt.Errorf("metadata responseTimeout %q: want a duration such as 10s", v)
		}
	}
	if v := strings.TrimSpace(md["maxResponseBodySize"]); v != "" {
		if c.maxResponseBodySize, err = strconv.ParseInt(v, 10, 64); err != nil || c.maxResponseBodySize <= 0 {
			return c, fmt.Errorf("metadata maxResponseBodySize %q: want a positive number of bytes", v)
		}
	}
	skip, err := parseBool(md, "insecureSkipVerify", false)
	if err != nil {
		return c, err
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: skip} //nolint:gosec // opt-in by metadata
	if v := md["MTLSRootCA"]; v != "" {
		pem, err := pemOrFile("MTLSRootCA", v)
		if err != nil {
			return c, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return c, fmt.Errorf("metadata MTLSRootCA: no certificate found")
		}
		tc.RootCAs = pool
	}
	cert, key := md["MTLSClientCert"], md["MTLSClientKey"]
	if (cert == "") != (key == "") {
		return c, fmt.Errorf("metadata MTLSClientCert and MTLSClientKey go together")
	}
	if cert != "" {
		cb, err := pemOrFile("MTLSClientCert", cert)
		if err != nil {
			return c, err
		}
		kb, err := pemOrFile("MTLSClientKey", key)
		if err != nil {
			return c, err
		}
		pair, err := tls.X509KeyPair(cb, kb)
		if err != nil {
			return c, fmt.Errorf("metadata MTLSClientCert/MTLSClientKey: %w", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	c.tls = tc
	return c, nil
}

// Init reads the metadata and builds the HTTP client.
func (b *Binding) Init(_ context.Context, md sdk.Metadata) error {
	c, err := parse(md)
	if err != nil {
		return err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = c.tls
	b.md, b.client = c, &http.Client{Transport: tr, Timeout: c.timeout}
	return nil
}

// Close releases idle connections.
func (b *Binding) Close() error {
	if b.client != nil {
		b.client.CloseIdleConnections()
	}
	return nil
}

// Operations are the HTTP verbs, lower case, plus create (= POST).
func (b *Binding) Operations() []string {
	return []string{"create", "get", "head", "post", "put", "patch", "delete", "options", "trace"}
}

// Invoke sends one request: operation = verb, metadata path appended to the
// URL, metadata keys starting with an upper-case letter as headers (as in
// Dapr), data as the body of create/post/put/patch/delete. The answer
// carries the body, metadata statusCode and status, and the response
// headers; a non-2xx is an error unless errorIfNot2XX is false.
func (b *Binding) Invoke(ctx context.Context, req *sdk.InvokeRequest) (*sdk.InvokeResponse, error) {
	if b.client == nil {
		return nil, fmt.Errorf("http binding is not initialised")
	}
	u := b.md.url
	errorIfNot2XX := b.md.errorIfNot2XX
	if p, ok := req.Metadata["path"]; ok && p != "" {
		u = strings.TrimRight(u, "/") + "/" + strings.TrimLeft(p, "/")
	}
	if v, ok := req.Metadata["errorIfNot2XX"]; ok {
		bv, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("metadata errorIfNot2XX %q is not a boolean: %w", v, sdk.ErrBadRequest)
		}
		errorIfNot2XX = bv
	}
	method := strings.ToUpper(req.Operation)
	if method == "CREATE" {
		method = http.MethodPost
	}
	var body io.Reader
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		if len(req.Data) > 0 {
			body = bytes.NewReader(req.Data)
		}
	}
	hr, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, fmt.Errorf("building the request to %s: %w", u, sdk.ErrBadRequest)
	}
	if body != nil {
		hr.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	hr.Header.Set("Accept", "application/json; charset=utf-8")
	for k, v := range b.md.headers {
		hr.Header.Set(k, v)
	}
	for k, v := range req.Metadata {
		if r := []rune(k); len(r) > 0 && unicode.IsUpper(r[0]) {
			hr.Header.Set(k, v)
		}
	}
	for _, k := range []string{"traceparent", "tracestate"} {
		if v := req.Metadata[k]; v != "" {
			hr.Header.Set(k, v)
		}
	}
	if b.md.securityToken != "" {
		hr.Header.Set(b.md.securityTokenHeader, b.md.securityToken)
	}
	resp, err := b.client.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, u, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, b.md.maxResponseBodySize))
	if err != nil {
		return nil, fmt.Errorf("reading the answer of %s %s: %w", method, u, err)
	}
	md := map[string]string{"statusCode": strconv.Itoa(resp.StatusCode), "status": resp.Status}
	for k, vs := range resp.Header {
		md[k] = strings.Join(vs, ", ")
	}
	if errorIfNot2XX && (resp.StatusCode < 200 || resp.StatusCode > 299) {
		return nil, fmt.Errorf("received status code %d", resp.StatusCode)
	}
	return &sdk.InvokeResponse{Data: data, Metadata: md, ContentType: resp.Header.Get("Content-Type")}, nil
}
