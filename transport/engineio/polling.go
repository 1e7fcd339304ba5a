package engineio

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// servePoll answers a long-polling GET with everything queued, joined by
// the record separator, waiting until something is queued or the session
// changes state.
func (s *Socket) servePoll(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	s.mu.Lock()
	if s.state == stateClosed && s.lingerReply && !s.polling {
		s.lingerReply = false
		reply := s.closeReply
		s.mu.Unlock()
		s.srv.remove(s)
		_ = writePollResponse(w, nil, reply, false)
		return
	}
	if s.pongOverdueLocked(start) {
		// The session is already dead; do not hand it a response.
		s.mu.Unlock()
		s.abort(ErrPingTimeout)
		writeError(w, http.StatusBadRequest, codeUnknownSID)
		return
	}
	if s.transport != transportPolling || s.state == stateClosed {
		s.mu.Unlock()
		writeError(w, http.StatusBadRequest, codeBadRequest)
		return
	}
	if s.polling {
		// Only one GET may wait: the reference server fails the session and
		// the waiting GET receives the close packet.
		s.mu.Unlock()
		writeError(w, http.StatusBadRequest, codeBadRequest)
		s.abort(fmt.Errorf("%w: overlapping GET", ErrInvalidPacket))
		return
	}
	s.polling = true

	var (
		batch    []item
		reply    packetType // a single control packet to answer with, if non-zero
		finish   bool       // the session ends after this response
		refused  bool       // the session moved to WebSocket while waiting
		noopTick *time.Timer
		noopC    <-chan time.Time
		noopDue  bool
	)
	for {
		if s.state == stateClosed {
			reply = s.closeReply
			break
		}
		if s.transport != transportPolling {
			refused = true
			break
		}
		if len(s.queue) > 0 {
			batch = s.queue
			s.queue, s.spare = s.spare[:0], nil
			s.queueBytes = 0
			if s.state == stateClosing {
				finish = true
			}
			break
		}
		if s.state == stateClosing {
			reply, finish = packetClose, true
			break
		}
		if !s.probedAt.IsZero() {
			// An upgrade is under way: release the client's poll with noop.
			if start.Before(s.probedAt) || noopDue {
				reply = packetNoop
				break
			}
			if noopTick == nil {
				noopTick = time.NewTimer(time.Until(start.Add(upgradeNoopDelay)))
				noopC = noopTick.C
			}
		}
		s.mu.Unlock()
		select {
		case <-s.wake:
		case <-noopC:
			noopDue, noopC = true, nil
		case <-r.Context().Done():
			if noopTick != nil {
				noopTick.Stop()
			}
			s.mu.Lock()
			s.polling = false
			s.mu.Unlock()
			s.abort(fmt.Errorf("%w: poll request aborted", ErrTransportClosed))
			return
		}
		s.mu.Lock()
	}
	s.polling = false
	reason := s.closeErr
	s.mu.Unlock()
	if noopTick != nil {
		noopTick.Stop()
	}

	if refused {
		writeError(w, http.StatusBadRequest, codeBadRequest)
		return
	}
	err := writePollResponse(w, batch, reply, finish)
	if batch != nil {
		clear(batch)
		if cap(batch) <= maxSpareItems {
			s.mu.Lock()
			s.spare = batch[:0]
			s.mu.Unlock()
		}
	}
	switch {
	case finish:
		s.abort(reason)
	case err != nil:
		s.abort(fmt.Errorf("%w: poll response: %v", ErrTransportClosed, err))
	}
}

// writePollResponse writes the queued items, then the close packet when
// finish is set; or, with no items, the single control packet reply.
func writePollResponse(w http.ResponseWriter, batch []item, reply packetType, finish bool) error {
	var body []byte
	if len(batch) == 0 {
		if reply == 0 {
			reply = packetClose
		}
		body = []byte{byte(reply)}
	} else {
		n := len(batch) - 1
		for _, it := range batch {
			n += pollingLen(it)
		}
		if finish {
			n += 2
		}
		body = make([]byte, 0, n)
		for i, it := range batch {
			if i > 0 {
				body = append(body, recordSeparator)
			}
			body = appendPolling(body, it)
		}
		if finish {
			body = append(body, recordSeparator, byte(packetClose))
		}
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=UTF-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(body)
	return err
}

// servePost reads a long-polling POST: the client's packets, joined by the
// record separator. It answers "ok" after they were handled.
func (s *Socket) servePost(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.transport != transportPolling || s.state == stateClosed {
		s.mu.Unlock()
		writeError(w, http.StatusBadRequest, codeBadRequest)
		return
	}
	if s.posting {
		s.mu.Unlock()
		writeError(w, http.StatusBadRequest, codeBadRequest)
		s.abort(fmt.Errorf("%w: overlapping POST", ErrInvalidPacket))
		return
	}
	s.posting = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.posting = false
		s.mu.Unlock()
	}()

	limit := int64(s.srv.cfg.MaxPayload)
	if r.ContentLength > limit {
		http.Error(w, "payload too large", http.StatusRequestEntityTooLarge)
		s.abort(ErrPayloadTooLarge)
		return
	}
	body, err := readBody(http.MaxBytesReader(w, r.Body, limit), r.ContentLength)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			http.Error(w, "payload too large", http.StatusRequestEntityTooLarge)
			s.abort(ErrPayloadTooLarge)
			return
		}
		s.abort(fmt.Errorf("%w: reading POST: %v", ErrTransportClosed, err))
		return
	}
	packets, err := decodePayload(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, codeBadRequest)
		s.abort(err)
		return
	}
	for _, p := range packets {
		if !s.handlePacket(p) {
			break
		}
	}
	h := w.Header()
	h.Set("Content-Type", "text/html")
	h.Set("Content-Length", "2")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "ok")
}

// readBody reads r whole, sized by the Content-Length when known.
func readBody(r io.Reader, contentLength int64) ([]byte, error) {
	if contentLength <= 0 {
		return io.ReadAll(r)
	}
	buf := make([]byte, contentLength+1) // +1 detects a body longer than announced
	n, err := io.ReadFull(r, buf)
	switch {
	case err == io.ErrUnexpectedEOF || err == io.EOF:
		return buf[:n], nil
	case err != nil:
		return nil, err
	}
	// Longer than announced: net/http stops at Content-Length, so this is
	// unreachable in practice; read on to let MaxBytesReader judge.
	rest, err := io.ReadAll(r)
	return append(buf, rest...), err
}
