package admin

import (
	"encoding/json"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

type member struct {
	Name  string   `json:"name"`
	AppID string   `json:"appId"`
	Types []string `json:"actorTypes,omitempty"`
}

func TestPagesJSONAndText(t *testing.T) {
	ready := false
	h := New(map[string]Page{
		"members": func() any {
			return []member{{Name: "a-1", AppID: "a"}, {Name: "b-1", AppID: "b", Types: []string{"Cart", "Order"}}}
		},
		"config_dump": func() any { return map[string]any{"appId": "a"} },
	}, func() bool { return ready })
	srv := httptest.NewServer(h)
	defer srv.Close()

	get := func(path string) (int, string) {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get("/members")
	var got []member
	if code != 200 || json.Unmarshal([]byte(body), &got) != nil || len(got) != 2 || got[1].Types[1] != "Order" {
		t.Fatalf("/members JSON: %d %s", code, body)
	}
	_, text := get("/members?format=text")
	lines := strings.Split(strings.TrimSpace(text), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") || !strings.Contains(lines[0], "APPID") || !strings.Contains(lines[2], "Cart,Order") {
		t.Fatalf("/members text:\n%s", text)
	}
	if code, _ := get("/ready"); code != 503 {
		t.Fatalf("/ready before ready: %d", code)
	}
	ready = true
	if code, _ := get("/ready"); code != 200 {
		t.Fatalf("/ready when ready: %d", code)
	}
	if _, idx := get("/"); !strings.Contains(idx, "/config_dump") || !strings.Contains(idx, "/members") {
		t.Fatalf("index: %s", idx)
	}
}
