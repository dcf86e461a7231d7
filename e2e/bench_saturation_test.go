package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/visitrelay/visitrelay/internal/relaytest"
)

// saturationClients is how many posts are in flight at once.
const saturationClients = 32

// BenchmarkSaturation measures the visits per second one gateway node
// acknowledges durably over HTTP with saturationClients clients, and the
// embedded JetStream's own durable publish rate on the same disk and server
// in the same run (synchronous publishes of visit-sized messages from as
// many clients to a file stream with fsync before ack). Run it with
// -benchtime=1x; each phase lasts 10 s.
func BenchmarkSaturation(b *testing.B) {
	e := relaytest.Start(b)
	for b.Loop() {
		engine := engineRate(b, e, 10*time.Second)
		accepted, p99 := gatewayRate(b, e, 10*time.Second)
		b.ReportMetric(engine, "engine-publish/s")
		b.ReportMetric(accepted, "gateway-accept/s")
		b.ReportMetric(float64(p99)/float64(time.Millisecond), "accept-p99-ms")
		b.ReportMetric(accepted/engine, "gateway/engine")
	}
}

func engineRate(b *testing.B, e *relaytest.Env, d time.Duration) float64 {
	b.Helper()
	nc, err := nats.Connect(e.Gateway.NATSURL())
	if err != nil {
		b.Fatalf("connect to the gateway's NATS: %v", err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "BENCH", Subjects: []string{"bench.>"}, Storage: jetstream.FileStorage})
	if err != nil {
		b.Fatalf("create bench stream: %v", err)
	}
	defer js.DeleteStream(ctx, "BENCH")

	payload := bytes.Repeat([]byte("v"), 400)
	var count atomic.Int64
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for range saturationClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if _, err := js.Publish(ctx, "bench."+uuid.NewString(), payload); err == nil {
					count.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return float64(count.Load()) / d.Seconds()
}

func gatewayRate(b *testing.B, e *relaytest.Env, d time.Duration) (float64, time.Duration) {
	b.Helper()
	token := e.Login("eva.novak")
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: saturationClients}}
	deadline := time.Now().Add(d)
	var mu sync.Mutex
	var latencies []time.Duration
	var wg sync.WaitGroup
	for range saturationClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				body, _ := json.Marshal(map[string]any{"visitId": uuid.NewString(), "clientId": "106", "userId": "12",
					"proposedDevices": []int{3, 4}, "soldDevices": []int{4}, "dateTime": time.Now().UTC().Format(time.RFC3339)})
				req, _ := http.NewRequest(http.MethodPost, e.URL+"/api/v1/visits", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+token)
				start := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					continue
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusCreated {
					mu.Lock()
					latencies = append(latencies, time.Since(start))
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if len(latencies) == 0 {
		b.Fatal("no visit accepted")
	}
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	return float64(len(latencies)) / d.Seconds(), latencies[len(latencies)*99/100]
}
