package main

import (
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/outrigger/outrigger/plugins/sdk"
	"github.com/outrigger/outrigger/plugins/sdk/sdktest"
)

// echo answers with the request's method, path, selected headers and body.
func echo(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/fail" {
		http.Error(w, "boom", http.StatusTeapot)
		return
	}
	b, _ := io.ReadAll(r.Body)
	w.Header().Set("X-Echo-Method", r.Method)
	w.Header().Set("Content-Type", "text/plain")
	_, _ = io.WriteString(w, r.Method+" "+r.URL.Path+" token="+r.Header.Get("X-Token")+" custom="+r.Header.Get("X-Custom")+
		" default="+r.Header.Get("X-Default")+" tp="+r.Header.Get("traceparent")+" body="+string(b))
}

func calls() []sdktest.OutputCall {
	want := func(sub ...string) func(*testing.T, *sdk.InvokeResponse) {
		return func(t *testing.T, r *sdk.InvokeResponse) {
			for _, s := range sub {
				if !strings.Contains(string(r.Data), s) {
					t.Errorf("answer %q lacks %q", r.Data, s)
				}
			}
			if r.Metadata["statusCode"] != "200" {
				t.Errorf("statusCode = %q", r.Metadata["statusCode"])
			}
		}
	}
	tp := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	return []sdktest.OutputCall{
		{Name: "get", Operation: "get", Metadata: map[string]string{"path": "/a/b", "X-Custom": "c", "traceparent": tp},
			Check: want("GET /a/b", "token=s3cret", "custom=c", "default=d", "tp="+tp)},
		{Name: "create is POST", Operation: "create", Data: []byte(`{"x":1}`), Check: want(`POST / `, `body={"x":1}`)},
		{Name: "put", Operation: "put", Data: []byte("v"), Metadata: map[string]string{"path": "k"}, Check: want("PUT /k", "body=v")},
		{Name: "patch", Operation: "patch", Check: want("PATCH /")},
		{Name: "delete", Operation: "delete", Check: want("DELETE /")},
		{Name: "options", Operation: "options", Check: want("OPTIONS /")},
		{Name: "head", Operation: "head", Check: func(t *testing.T, r *sdk.InvokeResponse) {
			if len(r.Data) != 0 || r.Metadata["X-Echo-Method"] != "HEAD" {
				t.Errorf("HEAD answer %q %v", r.Data, r.Metadata)
			}
		}},
		{Name: "non-2xx fails", Operation: "get", Metadata: map[string]string{"path": "fail"}, WantCode: codes.Internal},
		{Name: "non-2xx allowed", Operation: "get", Metadata: map[string]string{"path": "fail", "errorIfNot2XX": "false"},
			Check: func(t *testing.T, r *sdk.InvokeResponse) {
				if r.Metadata["statusCode"] != "418" {
					t.Errorf("statusCode = %q, want 418", r.Metadata["statusCode"])
				}
			}},
		{Name: "bad errorIfNot2XX", Operation: "get", Metadata: map[string]string{"errorIfNot2XX": "maybe"}, WantCode: codes.InvalidArgument},
	}
}

func TestConformance(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(echo))
	defer srv.Close()
	sdktest.ExerciseOutputBinding(t, func() sdk.OutputBinding { return New() }, sdktest.OutputBindingCase{
		Metadata: sdk.Metadata{"url": srv.URL, "securityToken": "s3cret", "securityTokenHeader": "X-Token",
			"headers": `{"X-Default":"d"}`},
		BadMetadata: sdk.Metadata{"url": "ftp://nope"},
		Operations:  []string{"create", "get", "head", "post", "put", "patch", "delete", "options", "trace"},
		Calls:       calls(),
	})
}

func TestTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(echo))
	defer srv.Close()
	ca := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	ok := func(t *testing.T, r *sdk.InvokeResponse) {
		if !strings.Contains(string(r.Data), "GET /") {
			t.Errorf("answer %q", r.Data)
		}
	}
	for _, tc := range []struct {
		name string
		md   sdk.Metadata
		code codes.Code
	}{
		{"untrusted", sdk.Metadata{"url": srv.URL}, codes.Internal},
		{"root CA", sdk.Metadata{"url": srv.URL, "MTLSRootCA": ca}, codes.OK},
		{"insecureSkipVerify", sdk.Metadata{"url": srv.URL, "insecureSkipVerify": "true"}, codes.OK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			call := sdktest.OutputCall{Name: "get", Operation: "get", WantCode: tc.code}
			if tc.code == codes.OK {
				call.Check = ok
			}
			sdktest.ExerciseOutputBinding(t, func() sdk.OutputBinding { return New() }, sdktest.OutputBindingCase{
				Metadata: tc.md, Calls: []sdktest.OutputCall{call},
			})
		})
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name    string
		md      sdk.Metadata
		wantErr string
	}{
		{"minimal", sdk.Metadata{"url": "http://127.0.0.1:1"}, ""},
		{"no url", sdk.Metadata{}, "url"},
		{"relative url", sdk.Metadata{"url": "/x"}, "url"},
		{"bad headers", sdk.Metadata{"url": "http://h", "headers": "X: y"}, "headers"},
		{"token without header", sdk.Metadata{"url": "http://h", "securityToken": "t"}, "securityTokenHeader"},
		{"bad bool", sdk.Metadata{"url": "http://h", "errorIfNot2XX": "perhaps"}, "errorIfNot2XX"},
		{"bad timeout", sdk.Metadata{"url": "http://h", "responseTimeout": "soon"}, "responseTimeout"},
		{"bad CA", sdk.Metadata{"url": "https://h", "MTLSRootCA": "-----BEGIN CERTIFICATE-----\nxx\n-----END CERTIFICATE-----"}, "MTLSRootCA"},
		{"missing CA file", sdk.Metadata{"url": "https://h", "MTLSRootCA": "/nonexistent/ca.pem"}, "MTLSRootCA"},
		{"cert without key", sdk.Metadata{"url": "https://h", "MTLSClientCert": "x"}, "MTLSClientKey"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(tc.md)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("want an error naming %s, got %v", tc.wantErr, err)
			}
		})
	}
}
