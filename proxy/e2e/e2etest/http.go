package e2etest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	dapr "github.com/dapr/go-sdk/client"
)

// Response is a whole HTTP answer.
type Response struct {
	Status  int
	Header  http.Header
	Body    []byte
	Elapsed time.Duration // from sending the request to the end of the answer's body
}

// Request does one request with c within timeout and reads the whole
// answer. hdr may be nil; a nil body sends none.
func Request(c *http.Client, method, url string, hdr http.Header, body []byte, timeout time.Duration) (Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return Response{}, err
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return Response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return Response{}, fmt.Errorf("read body: %w", err)
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b, Elapsed: time.Since(start)}, nil
}

// DaprError is Dapr's JSON error body.
type DaprError struct {
	ErrorCode string `json:"errorCode"`
	Message   string `json:"message"`
}

// Client returns an official Go SDK client connected to the sidecar's gRPC
// port, closed when the test ends.
func (s *Sidecar) Client(t testing.TB) dapr.Client {
	t.Helper()
	c, err := dapr.NewClientWithAddress(s.GRPCAddr())
	if err != nil {
		t.Fatalf("Go SDK client for %s: %v", s.Name, err)
	}
	t.Cleanup(c.Close)
	return c
}

// JSONDefault returns hdr with Content-Type application/json added when
// body is non-nil and hdr names no Content-Type; hdr itself is not changed.
func JSONDefault(hdr http.Header, body []byte) http.Header {
	if body == nil || hdr.Get("Content-Type") != "" {
		return hdr
	}
	h := hdr.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set("Content-Type", "application/json")
	return h
}
