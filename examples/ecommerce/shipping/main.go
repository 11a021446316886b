// Command shipping is the e-commerce example's shipping service (Go,
// standard library only). Its declarative v2alpha1 Subscription
// (components/subscriptions.yaml) routes orders with a CEL rule: orders
// whose amount is over 1000 go to POST /orders/priority (express shipping),
// all others to POST /orders (standard). Each order is shipped once even if
// the sidecar delivers it again. GET /stats reports what it saw per route.
//
// Environment: APP_PORT (default 7004).
package main

import (
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"os"
	"sort"
	"sync"
)

type shipper struct {
	mu         sync.Mutex
	seen       map[string]map[string]bool // route → order ids
	deliveries map[string]int
}

func (s *shipper) handle(route string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			Data struct {
				OrderID  string  `json:"orderId"`
				Customer string  `json:"customer"`
				Amount   float64 `json:"amount"`
			} `json:"data"`
		}
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil || ev.Data.OrderID == "" {
			log.Printf("order event without an orderId dropped (%v)", err)
			writeStatus(w, "DROP")
			return
		}
		s.mu.Lock()
		s.deliveries[route]++
		if s.seen[route] == nil {
			s.seen[route] = map[string]bool{}
		}
		isNew := !s.seen[route][ev.Data.OrderID]
		s.seen[route][ev.Data.OrderID] = true
		s.mu.Unlock()
		if isNew {
			log.Printf("order %s for %s shipped %s (amount %.2f)", ev.Data.OrderID, ev.Data.Customer, route, ev.Data.Amount)
		}
		writeStatus(w, "SUCCESS")
	}
}

func (s *shipper) stats(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	seen := map[string][]string{}
	for route, set := range s.seen {
		l := make([]string, 0, len(set))
		for id := range set {
			l = append(l, id)
		}
		sort.Strings(l)
		seen[route] = l
	}
	deliveries := map[string]int{}
	for route, n := range s.deliveries {
		deliveries[route] = n
	}
	s.mu.Unlock()
	out := map[string]any{"service": "shipping", "seen": seen, "deliveries": deliveries}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func writeStatus(w http.ResponseWriter, status string) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"status":%q}`, status)
}

func main() {
	port := os.Getenv("APP_PORT")
	if port == "" {
		port = "7004"
	}
	s := &shipper{seen: map[string]map[string]bool{}, deliveries: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /orders", s.handle("standard"))
	mux.HandleFunc("POST /orders/priority", s.handle("priority"))
	mux.HandleFunc("GET /stats", s.stats)
	log.SetFlags(0)
	log.Printf("shipping service listening on port %s", port)
	log.Fatal(http.ListenAndServe("127.0.0.1:"+port, mux))
}
