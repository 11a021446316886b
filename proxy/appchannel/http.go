package appchannel

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// HTTPChannel calls an HTTP app.
type HTTPChannel struct {
	base     string // http://host:port
	client   *http.Client
	appToken string
}

// NewHTTP returns a channel to the HTTP app at addr (host:port). appToken, when
// not empty, is sent as dapr-api-token on every call (APP_API_TOKEN).
// maxConcurrency > 0 caps connections to the app.
func NewHTTP(addr, appToken string, maxConcurrency int) *HTTPChannel {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		WriteBufferSize:     32 << 10,
		ReadBufferSize:      32 << 10,
	}
	if maxConcurrency > 0 {
		tr.MaxConnsPerHost = maxConcurrency
	}
	return &HTTPChannel{
		base:     "http://" + addr,
		client:   &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		appToken: appToken,
	}
}

// Invoke sends the request to the app and returns its answer unchanged.
func (c *HTTPChannel) Invoke(ctx context.Context, req *Request) (*Response, error) {
	verb := req.Verb
	if verb == "" {
		verb = http.MethodPost
	}
	var sb strings.Builder
	sb.Grow(len(c.base) + len(req.Method) + len(req.Query) + 2)
	sb.WriteString(c.base)
	sb.WriteByte('/')
	sb.WriteString(strings.TrimPrefix(req.Method, "/"))
	if req.Query != "" {
		sb.WriteByte('?')
		sb.WriteString(req.Query)
	}
	body := req.Body
	if req.ContentLength == 0 {
		body = nil
	}
	hr, err := http.NewRequestWithContext(ctx, verb, sb.String(), body)
	if err != nil {
		return nil, fmt.Errorf("appchannel: build request: %w", err)
	}
	if req.Header != nil {
		hr.Header = req.Header
		if h := req.Header.Get("Host"); h != "" {
			hr.Host = h
			hr.Header.Del("Host")
		}
	}
	hr.ContentLength = req.ContentLength
	if body == nil {
		hr.ContentLength = 0
	}
	if c.appToken != "" {
		hr.Header.Set("dapr-api-token", c.appToken)
	}
	resp, err := c.client.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("appchannel: call app: %w", err)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: resp.Body}, nil
}

// Close releases idle connections.
func (c *HTTPChannel) Close() error {
	c.client.CloseIdleConnections()
	return nil
}
