package loadtest

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Settings of a saturation attack. Two attacks with the same Settings are
// comparable: the same number of workers, each with its own keep-alive
// connection, sending back to back for the same time.
type Settings struct {
	Workers  int           // concurrent requests, and connections (default 16)
	Duration time.Duration // how long to send
	Timeout  time.Duration // per request (default 10 s)
}

// Summary sums up an attack.
type Summary struct {
	Name        string
	Requests    uint64
	Seconds     float64 // from the first request to the last response
	RPS         float64 // successful requests per second
	P50, P99    time.Duration
	Max         time.Duration
	Non2xx      int            // answers outside 200..299
	Errors      map[string]int // transport errors and non-2xx statuses, by text
	MeanBytesIn float64        // mean response body size
}

// Line is the summary as one line to quote.
func (s Summary) Line() string {
	return fmt.Sprintf("%s: %d requests in %.1f s = %.0f req/s, latency p50 %v p99 %v max %v, non-2xx %d, errors %d, mean response %.0f B",
		s.Name, s.Requests, s.Seconds, s.RPS, s.P50.Round(time.Microsecond), s.P99.Round(time.Microsecond),
		s.Max.Round(time.Microsecond), s.Non2xx, s.ErrorCount(), s.MeanBytesIn)
}

// ErrorCount is the number of failed requests (transport errors and non-2xx).
func (s Summary) ErrorCount() int {
	n := 0
	for _, c := range s.Errors {
		n += c
	}
	return n
}

// Targets turns /recall bodies into POST targets for url.
func Targets(url string, reqs []Request) []vegeta.Target {
	h := http.Header{"Content-Type": []string{"application/json"}}
	out := make([]vegeta.Target, len(reqs))
	for i, r := range reqs {
		out[i] = vegeta.Target{Method: http.MethodPost, URL: url, Body: r.Body, Header: h}
	}
	return out
}

// Attack sends targets round robin at the highest rate s.Workers closed-loop
// workers reach, for s.Duration or until ctx ends. each, if not nil, sees
// every result (bodies included) as it arrives, on one goroutine.
func Attack(ctx context.Context, name string, targets []vegeta.Target, s Settings, each func(*vegeta.Result)) Summary {
	if s.Workers <= 0 {
		s.Workers = 16
	}
	if s.Timeout <= 0 {
		s.Timeout = 10 * time.Second
	}
	w := uint64(s.Workers)
	atk := vegeta.NewAttacker(
		vegeta.Workers(w), vegeta.MaxWorkers(w),
		vegeta.Connections(s.Workers), vegeta.MaxConnections(s.Workers),
		vegeta.KeepAlive(true), vegeta.Timeout(s.Timeout), vegeta.Redirects(vegeta.NoFollow),
	)
	stop := context.AfterFunc(ctx, func() { atk.Stop() })
	defer stop()
	var m vegeta.Metrics
	sum := Summary{Name: name, Errors: map[string]int{}}
	var bytesIn uint64
	// Rate 0 with a fixed worker pool: every worker sends its next request
	// as soon as the previous answer is read (saturation, closed loop).
	for res := range atk.Attack(vegeta.NewStaticTargeter(targets...), vegeta.Rate{}, s.Duration, name) {
		m.Add(res)
		bytesIn += res.BytesIn
		if res.Code < 200 || res.Code > 299 {
			if res.Code != 0 {
				sum.Non2xx++
			}
			e := res.Error
			if e == "" {
				e = fmt.Sprintf("status %d", res.Code)
			}
			sum.Errors[e]++
		}
		if each != nil {
			each(res)
		}
	}
	m.Close()
	sum.Requests = m.Requests
	sum.Seconds = (m.Duration + m.Wait).Seconds()
	if sum.Seconds > 0 {
		sum.RPS = float64(m.Requests-uint64(sum.ErrorCount())) / sum.Seconds
	}
	sum.P50, sum.P99, sum.Max = m.Latencies.P50, m.Latencies.P99, m.Latencies.Max
	if m.Requests > 0 {
		sum.MeanBytesIn = float64(bytesIn) / float64(m.Requests)
	}
	return sum
}

// TopErrors lists up to n error texts, most frequent first.
func (s Summary) TopErrors(n int) string {
	type ec struct {
		e string
		c int
	}
	var all []ec
	for e, c := range s.Errors {
		all = append(all, ec{e, c})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].c > all[j].c || all[i].c == all[j].c && all[i].e < all[j].e })
	var b strings.Builder
	for i, x := range all {
		if i == n {
			break
		}
		fmt.Fprintf(&b, "%d × %s; ", x.c, x.e)
	}
	return b.String()
}
