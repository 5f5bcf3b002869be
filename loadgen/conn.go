package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// connPool is the submit path's keep-alive connection pool. Unlike
// net/http's transport, which hands every request to two goroutines of its
// connection, a sender writes its request and reads the answer on its own
// goroutine over a pooled connection: on this 2-core box that is about twice
// the requests per CPU second, and CPU the generator saves is CPU the mesh
// under test keeps. Idle connections are reused last-in first-out, so the
// number of open connections follows the concurrency actually needed (at
// most Senders).
type connPool struct {
	addr    string // host:port to dial
	host    string // Host header
	tls     *tls.Config
	head    string // the headers every request carries, after the request line
	timeout time.Duration

	mu   sync.Mutex
	idle []*httpConn
}

// httpConn is one HTTP/1.1 connection, used by one sender at a time.
type httpConn struct {
	c      net.Conn
	br     *bufio.Reader
	wbuf   []byte
	reused bool      // has answered before: a failure may be the server having closed it while idle
	since  time.Time // idle since
}

// maxIdle is how long a connection may sit idle in the pool before it is
// closed instead of reused: under the servers' idle timeouts (the
// producer's is 120 s), so the client, not the server, ends idle
// connections and no request races a server-side close.
const maxIdle = 30 * time.Second

func newConnPool(target, token string, timeout time.Duration) (*connPool, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	p := &connPool{addr: u.Host, host: u.Host, timeout: timeout}
	if u.Port() == "" {
		p.addr = net.JoinHostPort(u.Hostname(), map[bool]string{true: "443", false: "80"}[u.Scheme == "https"])
	}
	if u.Scheme == "https" {
		p.tls = &tls.Config{ServerName: u.Hostname(), NextProtos: []string{"http/1.1"}}
	}
	p.head = "Host: " + p.host + "\r\nContent-Type: application/json\r\nUser-Agent: agentmesh-loadgen\r\n"
	if token != "" {
		p.head += "Authorization: Bearer " + token + "\r\n"
	}
	return p, nil
}

func (p *connPool) dial() (*httpConn, error) {
	d := &net.Dialer{Timeout: min(p.timeout, 5*time.Second), KeepAlive: 30 * time.Second}
	var c net.Conn
	var err error
	if p.tls != nil {
		c, err = (&tls.Dialer{NetDialer: d, Config: p.tls}).DialContext(context.Background(), "tcp", p.addr)
	} else {
		c, err = d.Dial("tcp", p.addr)
	}
	if err != nil {
		return nil, err
	}
	return &httpConn{c: c, br: bufio.NewReaderSize(c, 16<<10)}, nil
}

// get returns the most recently used idle connection, closing those idle
// longer than maxIdle, or a new one.
func (p *connPool) get() (*httpConn, error) {
	now := time.Now()
	var stale []*httpConn
	p.mu.Lock()
	// Idle connections are in the order they were put back: the oldest first.
	n := 0
	for n < len(p.idle) && now.Sub(p.idle[n].since) > maxIdle {
		n++
	}
	if n > 0 {
		stale = append(stale, p.idle[:n]...)
		p.idle = append(p.idle[:0], p.idle[n:]...)
	}
	var c *httpConn
	if n := len(p.idle); n > 0 {
		c = p.idle[n-1]
		p.idle = p.idle[:n-1]
	}
	p.mu.Unlock()
	for _, s := range stale {
		_ = s.c.Close()
	}
	if c != nil {
		return c, nil
	}
	return p.dial()
}

func (p *connPool) put(c *httpConn) {
	c.reused = true
	c.since = time.Now()
	p.mu.Lock()
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

// close closes the idle connections (those in use are closed by their
// users on error, or returned and closed here on the next call).
func (p *connPool) close() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, c := range idle {
		_ = c.c.Close()
	}
}

// post sends body to path and reads the whole answer into buf. A request on
// a reused connection that the server had closed while it was idle is sent
// again once on a newly dialed connection (another idle one could have been
// closed as well).
func (p *connPool) post(path string, body []byte, buf *bytes.Buffer) (status int, err error) {
	for attempt := 0; ; attempt++ {
		var c *httpConn
		if attempt == 0 {
			c, err = p.get()
		} else {
			c, err = p.dial()
		}
		if err != nil {
			return 0, err
		}
		status, keep, err := p.roundTrip(c, path, body, buf)
		if err == nil {
			if keep {
				p.put(c)
			} else {
				_ = c.c.Close()
			}
			return status, nil
		}
		_ = c.c.Close()
		if !c.reused || attempt > 0 || !closedWhileIdle(err) {
			return 0, err
		}
	}
}

// roundTrip writes one request and reads its answer; keep reports whether
// the connection may be reused.
func (p *connPool) roundTrip(c *httpConn, path string, body []byte, buf *bytes.Buffer) (int, bool, error) {
	if err := c.c.SetDeadline(time.Now().Add(p.timeout)); err != nil {
		return 0, false, err
	}
	w := append(c.wbuf[:0], "POST "...)
	w = append(w, path...)
	w = append(w, " HTTP/1.1\r\n"...)
	w = append(w, p.head...)
	w = append(w, "Content-Length: "...)
	w = strconv.AppendInt(w, int64(len(body)), 10)
	w = append(w, "\r\n\r\n"...)
	w = append(w, body...)
	c.wbuf = w
	if _, err := c.c.Write(w); err != nil {
		return 0, false, err
	}
	if _, err := c.br.Peek(1); err != nil { // io.EOF here: closed before answering
		return 0, false, err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return 0, false, err
	}
	buf.Reset()
	_, err = buf.ReadFrom(io.LimitReader(resp.Body, 64<<20))
	_ = resp.Body.Close()
	if err != nil {
		return 0, false, fmt.Errorf("reading answer: %w", err)
	}
	return resp.StatusCode, !resp.Close, nil
}

// closedWhileIdle reports whether err is what a request meets on a
// connection the server closed while it sat idle (nothing was answered).
func closedWhileIdle(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
