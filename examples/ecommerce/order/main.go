// Command order is the e-commerce example's order service (Go, standard
// library only). POST /orders creates an order (a dummy one when the body is
// empty, as in the original article) and publishes it through its sidecar to
// every topic in PUBLISH_TOPICS (default "orders"); the sidecar delivers the
// bills that the billing service publishes back to POST /bills (declarative
// Subscription in components/). GET /stats reports what the service saw.
//
// Environment: APP_PORT (default 7001), DAPR_HTTP_PORT (default 3500),
// PUBSUB_NAME (default "pubsub"), PUBLISH_TOPICS (default "orders").
package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"math/big"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

// Order is what the order service publishes.
type Order struct {
	OrderID  string  `json:"orderId"`
	Customer string  `json:"customer"`
	Items    []Item  `json:"items"`
	Amount   float64 `json:"amount"`
	Created  string  `json:"created"`
}

// Item is one line of an order.
type Item struct {
	SKU      string  `json:"sku"`
	Quantity int     `json:"quantity"`
	Price    float64 `json:"price"`
}

// stats records the ids seen per key, and how many deliveries there were
// (deliveries > len(ids) means redeliveries: at-least-once).
type stats struct {
	mu         sync.Mutex
	ids        map[string]map[string]bool
	deliveries map[string]int
}

func newStats() *stats {
	return &stats{ids: map[string]map[string]bool{}, deliveries: map[string]int{}}
}

// add records id under key and reports whether it was new.
func (s *stats) add(key, id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deliveries[key]++
	if s.ids[key] == nil {
		s.ids[key] = map[string]bool{}
	}
	if s.ids[key][id] {
		return false
	}
	s.ids[key][id] = true
	return true
}

func (s *stats) snapshot(service string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string][]string{}
	for k, set := range s.ids {
		l := make([]string, 0, len(set))
		for id := range set {
			l = append(l, id)
		}
		sort.Strings(l)
		seen[k] = l
	}
	deliveries := map[string]int{}
	for k, n := range s.deliveries {
		deliveries[k] = n
	}
	return map[string]any{"service": service, "seen": seen, "deliveries": deliveries}
}

func main() {
	port := envOr("APP_PORT", "7001")
	daprURL := "http://127.0.0.1:" + envOr("DAPR_HTTP_PORT", "3500")
	pubsub := envOr("PUBSUB_NAME", "pubsub")
	topics := strings.Split(envOr("PUBLISH_TOPICS", "orders"), ",")
	st := newStats()
	client := &http.Client{Timeout: 10 * time.Second}

	mux := http.NewServeMux()
	mux.HandleFunc("POST /orders", func(w http.ResponseWriter, r *http.Request) {
		o, err := readOrder(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body, _ := json.Marshal(o)
		for _, t := range topics {
			t = strings.TrimSpace(t)
			if t == "" {
				continue
			}
			if err := publish(client, daprURL, pubsub, t, body); err != nil {
				log.Printf("publish order %s to %s: %v", o.OrderID, t, err)
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
		}
		st.add("published", o.OrderID)
		log.Printf("order %s published (amount %.2f)", o.OrderID, o.Amount)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(body)
	})
	mux.HandleFunc("POST /bills", func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			Source string `json:"source"`
			Data   struct {
				BillID  string  `json:"billId"`
				OrderID string  `json:"orderId"`
				Amount  float64 `json:"amount"`
			} `json:"data"`
		}
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil || ev.Data.OrderID == "" {
			// A malformed event will never get better: drop it.
			log.Printf("bill event without an orderId dropped (%v)", err)
			writeStatus(w, "DROP")
			return
		}
		if st.add("bills", ev.Data.OrderID) {
			log.Printf("bill %s for order %s received from %s", ev.Data.BillID, ev.Data.OrderID, ev.Source)
		}
		writeStatus(w, "SUCCESS")
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(st.snapshot("order"))
	})
	log.SetFlags(0)
	log.Printf("order service listening on port %s, publishing to %s/%s", port, pubsub, strings.Join(topics, ","))
	log.Fatal(http.ListenAndServe("127.0.0.1:"+port, mux))
}

// readOrder decodes the request body; an empty body or missing fields get
// a dummy order, as in the article.
func readOrder(body io.Reader) (Order, error) {
	var o Order
	b, err := io.ReadAll(io.LimitReader(body, 1<<20))
	if err != nil {
		return o, fmt.Errorf("read body: %w", err)
	}
	if len(bytes.TrimSpace(b)) > 0 {
		if err := json.Unmarshal(b, &o); err != nil {
			return o, fmt.Errorf("body must be a JSON order: %w", err)
		}
	}
	if o.OrderID == "" {
		o.OrderID = randomID()
	}
	if o.Customer == "" {
		o.Customer = "customer-" + randomID()[:4]
	}
	if len(o.Items) == 0 {
		n, _ := rand.Int(rand.Reader, big.NewInt(5))
		o.Items = []Item{{SKU: "sku-" + randomID()[:4], Quantity: int(n.Int64()) + 1, Price: 19.99}}
	}
	if o.Amount == 0 {
		for _, it := range o.Items {
			o.Amount += float64(it.Quantity) * it.Price
		}
	}
	if o.Created == "" {
		o.Created = time.Now().UTC().Format(time.RFC3339)
	}
	return o, nil
}

// publish posts one event to the sidecar's publish API.
func publish(c *http.Client, daprURL, pubsub, topic string, body []byte) error {
	resp, err := c.Post(daprURL+"/v1.0/publish/"+pubsub+"/"+topic, "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("sidecar answered %s: %s", resp.Status, msg)
	}
	return nil
}

func writeStatus(w http.ResponseWriter, status string) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"status":%q}`, status)
}

func randomID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
