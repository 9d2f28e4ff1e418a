package election

import "sync"

// notifier calls OnNewLeader in order from its own goroutine, so that a
// slow callback never delays an attempt. Run owns it: newNotifier starts
// the goroutine and close waits for it after delivering what was queued.
type notifier struct {
	fn func(string) // recovers from a panic of the callback

	mu     sync.Mutex
	queue  []string
	closed bool
	wake   chan struct{}
	done   chan struct{}
}

func newNotifier(fn func(string)) *notifier {
	n := &notifier{fn: fn, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go n.loop()
	return n
}

func (n *notifier) push(identity string) {
	n.mu.Lock()
	n.queue = append(n.queue, identity)
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

func (n *notifier) close() {
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
	<-n.done
}

func (n *notifier) loop() {
	defer close(n.done)
	for range n.wake {
		for {
			n.mu.Lock()
			if len(n.queue) == 0 {
				closed := n.closed
				n.mu.Unlock()
				if closed {
					return
				}
				break
			}
			identity := n.queue[0]
			n.queue = n.queue[1:]
			n.mu.Unlock()
			n.fn(identity)
		}
	}
}
