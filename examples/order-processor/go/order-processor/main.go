// Command order-processor is the Go version of the example's order-processor:
// it receives orders from the frontend through the sidecar. Standard library
// only; it listens on APP_PORT (set by `outrigger run`).
package main

import (
	"encoding/json"
	"log"
	"net/http"
	"os"
)

func main() {
	port := os.Getenv("APP_PORT")
	if port == "" {
		port = "5000"
	}
	http.HandleFunc("POST /process", func(w http.ResponseWriter, r *http.Request) {
		var order struct {
			OrderID string `json:"orderId"`
		}
		if err := json.NewDecoder(r.Body).Decode(&order); err != nil {
			http.Error(w, "body must be JSON with an orderId", http.StatusBadRequest)
			return
		}
		log.Printf("Received order %s for processing.", order.OrderID)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "processed", "orderId": order.OrderID})
	})
	log.Printf("order-processor listening on port %s", port)
	log.Fatal(http.ListenAndServe("127.0.0.1:"+port, nil))
}
