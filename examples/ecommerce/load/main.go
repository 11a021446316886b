// Command load drives the e-commerce example: it sends N orders to the
// order service (POST /orders, every -big-every'th one worth more than 1000
// so shipping's CEL rule routes it to express shipping), then polls every
// service's GET /stats until each has seen exactly what it should, and
// prints one line per service and topic/route. Exit status 0 means every
// service saw every order of this run exactly as expected (billing, and
// notification each order and each bill, order each bill, shipping each
// order on the right route and only there); 1 means something is missing or
// misrouted when -timeout ran out.
//
//	go run ./examples/ecommerce/load -n 100
//
// Order ids carry a per-run prefix, so earlier runs against the same
// services do not count.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

// expectation is one set of order ids a service must have seen under a key
// of its /stats "seen" map (and, when exclusive, no other id of this run).
type expectation struct {
	service, url, key string
	want              map[string]bool
	exclusive         bool
}

type statsResp struct {
	Service    string              `json:"service"`
	Seen       map[string][]string `json:"seen"`
	Deliveries map[string]int      `json:"deliveries"`
}

func main() {
	n := flag.Int("n", 100, "number of orders to send")
	orderURL := flag.String("order", "http://127.0.0.1:7001", "order service base URL")
	billingURL := flag.String("billing", "http://127.0.0.1:7002", "billing service base URL")
	notificationURL := flag.String("notification", "http://127.0.0.1:7003", "notification service base URL")
	shippingURL := flag.String("shipping", "http://127.0.0.1:7004", "shipping service base URL")
	bigEvery := flag.Int("big-every", 4, "every Nth order is worth over 1000 (0: none)")
	concurrency := flag.Int("concurrency", 8, "orders sent in parallel")
	timeout := flag.Duration("timeout", 60*time.Second, "how long to wait for every service to see every order")
	flag.Parse()
	if *n < 1 || *concurrency < 1 || *bigEvery < 0 {
		fmt.Fprintln(os.Stderr, "load: -n and -concurrency must be at least 1, -big-every not negative")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := run(ctx, *n, *bigEvery, *concurrency, *orderURL, *billingURL, *notificationURL, *shippingURL); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, n, bigEvery, concurrency int, orderURL, billingURL, notificationURL, shippingURL string) error {
	prefix := "load-" + randomHex(4) + "-"
	all, big, small := map[string]bool{}, map[string]bool{}, map[string]bool{}
	type order struct {
		OrderID  string  `json:"orderId"`
		Customer string  `json:"customer"`
		Amount   float64 `json:"amount"`
	}
	orders := make([]order, n)
	for i := range orders {
		o := order{OrderID: fmt.Sprintf("%s%05d", prefix, i), Customer: fmt.Sprintf("customer-%d", i%10), Amount: 25 + float64(i%40)}
		if bigEvery > 0 && i%bigEvery == bigEvery-1 {
			o.Amount = 1500 + float64(i)
			big[o.OrderID] = true
		} else {
			small[o.OrderID] = true
		}
		all[o.OrderID] = true
		orders[i] = o
	}

	start := time.Now()
	client := &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: concurrency}}
	work := make(chan order)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for o := range work {
				body, _ := json.Marshal(o)
				if err := post(ctx, client, orderURL+"/orders", body); err != nil {
					errs <- fmt.Errorf("order %s: %w", o.OrderID, err)
				}
			}
		}()
	}
	for _, o := range orders {
		work <- o
	}
	close(work)
	wg.Wait()
	close(errs)
	var sendErrs []error
	for err := range errs {
		sendErrs = append(sendErrs, err)
	}
	if len(sendErrs) > 0 {
		return fmt.Errorf("%d of %d orders not accepted by the order service, first: %w", len(sendErrs), n, sendErrs[0])
	}
	sent := time.Since(start)
	fmt.Printf("sent %d orders (%d over 1000) in %v (%.0f orders/s), run prefix %s\n",
		n, len(big), sent.Round(time.Millisecond), float64(n)/sent.Seconds(), prefix)

	exps := []expectation{
		{"order", orderURL, "published", all, false},
		{"order", orderURL, "bills", all, false},
		{"billing", billingURL, "orders", all, false},
		{"notification", notificationURL, "orders", all, false},
		{"notification", notificationURL, "bills", all, false},
		{"shipping", shippingURL, "priority", big, true},
		{"shipping", shippingURL, "standard", small, true},
	}
	for {
		lines, ok, err := check(ctx, client, prefix, exps)
		if ok || ctx.Err() != nil {
			for _, l := range lines {
				fmt.Println(l)
			}
			if ok {
				fmt.Printf("OK: every service saw every order as expected, %v after the first order\n", time.Since(start).Round(time.Millisecond))
				return nil
			}
			if err != nil {
				return fmt.Errorf("not every service saw every order in time (last error: %w)", err)
			}
			return errors.New("not every service saw every order in time")
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond): // poll interval
		}
	}
}

// check fetches every service's stats once and compares them with exps.
func check(ctx context.Context, c *http.Client, prefix string, exps []expectation) (lines []string, ok bool, lastErr error) {
	cache := map[string]*statsResp{}
	ok = true
	for _, e := range exps {
		st, found := cache[e.url]
		if !found {
			var err error
			st, err = getStats(ctx, c, e.url)
			if err != nil {
				lastErr = fmt.Errorf("%s: %w", e.service, err)
			}
			cache[e.url] = st
		}
		if st == nil {
			lines = append(lines, fmt.Sprintf("  %-12s %-10s unreachable: %v", e.service, e.key, lastErr))
			ok = false
			continue
		}
		got := map[string]bool{}
		for _, id := range st.Seen[e.key] {
			if strings.HasPrefix(id, prefix) {
				got[id] = true
			}
		}
		var missing, unexpected []string
		for id := range e.want {
			if !got[id] {
				missing = append(missing, id)
			}
		}
		for id := range got {
			if !e.want[id] {
				unexpected = append(unexpected, id)
			}
		}
		sort.Strings(missing)
		sort.Strings(unexpected)
		status := "ok"
		if len(missing) > 0 || (e.exclusive && len(unexpected) > 0) {
			status, ok = "WAITING", false
		}
		line := fmt.Sprintf("  %-12s %-10s expected %5d  seen %5d  deliveries %5d  %s",
			e.service, e.key, len(e.want), len(got), st.Deliveries[e.key], status)
		if len(missing) > 0 {
			line += fmt.Sprintf("  missing %d (first %s)", len(missing), missing[0])
		}
		if e.exclusive && len(unexpected) > 0 {
			line += fmt.Sprintf("  misrouted %d (first %s)", len(unexpected), unexpected[0])
		}
		lines = append(lines, line)
	}
	return lines, ok, lastErr
}

func getStats(ctx context.Context, c *http.Client, base string) (*statsResp, error) {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, base+"/stats", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /stats: %s", resp.Status)
	}
	var st statsResp
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, fmt.Errorf("GET /stats: %w", err)
	}
	return &st, nil
}

func post(ctx context.Context, c *http.Client, url string, body []byte) error {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
