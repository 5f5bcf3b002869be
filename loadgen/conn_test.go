package loadgen

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestConnPoolReuse: answers of every framing are read whole, keep-alive
// connections are reused, and "Connection: close" is honoured.
func TestConnPoolReuse(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	conns := map[string]bool{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		conns[r.RemoteAddr] = true
		mu.Unlock()
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("Authorization") != "Bearer s3cret" || r.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/big": // larger than the server's buffer: chunked
			w.WriteHeader(http.StatusAccepted)
			_, _ = w.Write(bytes.Repeat(body, 1000))
		case "/close":
			w.Header().Set("Connection", "close")
			_, _ = w.Write(body)
		default:
			_, _ = w.Write(body)
		}
	}))
	srv.Start()
	defer srv.Close()
	p, err := newConnPool(srv.URL, "s3cret", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	var buf bytes.Buffer
	for i, tc := range []struct {
		path string
		want int // answer length
	}{{"/a", 5}, {"/big", 5000}, {"/a", 5}, {"/close", 5}, {"/a", 5}} {
		status, err := p.post(tc.path, []byte("hello"), &buf)
		if err != nil || status/100 != 2 || buf.Len() != tc.want {
			t.Fatalf("request %d %s: status %d, %d bytes, %v; want 2xx, %d bytes", i, tc.path, status, buf.Len(), err, tc.want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(conns) != 2 { // one until /close, a second after it
		t.Errorf("%d connections for 5 sequential requests, want 2", len(conns))
	}
}

// oneShotServer answers one request per connection, then closes it, as a
// server ending keep-alive connections while they sit idle; its first stale
// connections are closed before anything is read. accepted counts the
// connections; stop closes the listener and waits for the accept loop.
func oneShotServer(t *testing.T, stale int) (addr string, accepted func() int, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	n := 0
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			n++
			answer := n > stale
			mu.Unlock()
			if answer {
				if req, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
					_, _ = io.Copy(io.Discard, req.Body)
					_, _ = io.WriteString(c, "HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\nok")
				}
			}
			_ = c.Close()
		}
	})
	accepted = func() int { mu.Lock(); defer mu.Unlock(); return n }
	return ln.Addr().String(), accepted, func() { _ = ln.Close(); wg.Wait() }
}

// TestConnPoolRetriesIdleClose: a server that closes a keep-alive
// connection while it is idle does not turn the next request into an error:
// it is sent again, once, on a new connection.
func TestConnPoolRetriesIdleClose(t *testing.T) {
	t.Parallel()
	addr, accepted, stop := oneShotServer(t, 0)
	p, err := newConnPool("http://"+addr, "", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for i := range 3 {
		if status, err := p.post("/api/v1/tasks", []byte("{}"), &buf); err != nil || status != 202 {
			t.Fatalf("request %d: %d %v", i, status, err)
		}
	}
	p.close()
	stop()
	if n := accepted(); n != 3 {
		t.Errorf("%d connections, want 3 (one per request, each retried once)", n)
	}
}

func TestTransportError(t *testing.T) {
	t.Parallel()
	p, err := newConnPool("http://127.0.0.1:1", "", time.Second) // nothing listens on port 1
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.post("/x", nil, &bytes.Buffer{})
	if got := transportError(err); !strings.HasPrefix(got, "dial tcp: ") || strings.Contains(got, "127.0.0.1") {
		t.Errorf("transportError = %q, want the cause without addresses", got)
	}
}

// TestConnPoolRetryDialsFresh: when every idle connection was closed by the
// server, the one resend goes out on a new connection, not on another stale
// one; and a connection idle longer than maxIdle is not reused at all.
func TestConnPoolRetryDialsFresh(t *testing.T) {
	t.Parallel()
	addr, accepted, stop := oneShotServer(t, 2)
	p, err := newConnPool("http://"+addr, "", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the two stale ones, pooled as if they had answered
		c, err := p.dial()
		if err != nil {
			t.Fatal(err)
		}
		p.put(c)
	}
	for deadline := time.Now().Add(5 * time.Second); accepted() < 2 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	var buf bytes.Buffer
	if status, err := p.post("/api/v1/tasks", []byte("{}"), &buf); err != nil || status != 202 {
		t.Fatalf("post after the server closed both idle connections: %d %v", status, err)
	}
	// The other stale connection is still pooled; age it past maxIdle: get
	// closes it and dials rather than reusing it.
	p.mu.Lock()
	for _, c := range p.idle {
		c.since = time.Now().Add(-2 * maxIdle)
	}
	p.mu.Unlock()
	if status, err := p.post("/api/v1/tasks", []byte("{}"), &buf); err != nil || status != 202 {
		t.Fatalf("post with only aged connections pooled: %d %v", status, err)
	}
	p.close()
	stop()
	if n := accepted(); n != 4 {
		t.Errorf("%d connections, want 4 (2 stale, 2 dialed for the posts)", n)
	}
}
