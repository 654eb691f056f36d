package webhook

// seenSet remembers the most recent delivery GUIDs in a fixed-size ring:
// when it is full, the oldest GUID is forgotten first. GitHub redelivers
// within minutes to days, by hand or by script, so a bounded memory of the
// last few thousand deliveries catches practically every duplicate without
// growing without limit.
//
// A seenSet is not safe for concurrent use; Intake guards it with its mutex.
type seenSet struct {
	ring  []string
	next  int // index in ring that the next GUID overwrites
	index map[string]struct{}
}

func newSeenSet(size int) *seenSet {
	return &seenSet{
		ring:  make([]string, size),
		index: make(map[string]struct{}, size),
	}
}

// has reports whether guid is remembered.
func (s *seenSet) has(guid string) bool {
	_, ok := s.index[guid]

	return ok
}

// add remembers guid, forgetting the oldest GUID when the ring is full.
// Adding a GUID that is already remembered does nothing.
func (s *seenSet) add(guid string) {
	if s.has(guid) {
		return
	}

	if old := s.ring[s.next]; old != "" {
		delete(s.index, old)
	}
	s.ring[s.next] = guid
	s.index[guid] = struct{}{}
	s.next = (s.next + 1) % len(s.ring)
}
