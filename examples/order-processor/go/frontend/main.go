// Command frontend is the Go version of the example's frontend: it takes
// orders on APP_PORT (default 3000) and hands them to order-processor
// through its sidecar (service invocation). Standard library only.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"time"
)

func main() {
	port := envOr("APP_PORT", "3000")
	daprPort := envOr("DAPR_HTTP_PORT", "3500")
	invokeURL := fmt.Sprintf("http://localhost:%s/v1.0/invoke/order-processor/method/process", daprPort)
	client := &http.Client{Timeout: 30 * time.Second}

	http.HandleFunc("POST /submit-order", func(w http.ResponseWriter, r *http.Request) {
		order, err := io.ReadAll(r.Body)
		if err != nil || !json.Valid(order) {
			http.Error(w, `{"message":"body must be JSON"}`, http.StatusBadRequest)
			return
		}
		log.Printf("Frontend received order: %s", order)
		resp, err := client.Post(invokeURL, "application/json", bytes.NewReader(order))
		if err != nil {
			fail(w, err)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			fail(w, fmt.Errorf("order-processor answered %d: %s", resp.StatusCode, body))
			return
		}
		result := map[string]any{}
		if err := json.Unmarshal(body, &result); err != nil {
			fail(w, err)
			return
		}
		log.Printf("Order processed: %s", body)
		result["message"] = "Order submitted successfully!"
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(result)
	})
	log.Printf("Frontend app listening at http://localhost:%s", port)
	log.Fatal(http.ListenAndServe(":"+port, nil))
}

func fail(w http.ResponseWriter, err error) {
	log.Printf("Error processing order: %v", err)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusInternalServerError)
	_, _ = w.Write([]byte(`{"message":"Failed to submit order."}` + "\n"))
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
