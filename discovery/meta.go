package discovery

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/hashicorp/memberlist"
)

// metaVersion is the first byte of every encoded node metadata, so a future
// layout can be told apart from this one.
const metaVersion = 1

// nodeMeta is what a member advertises in its memberlist node metadata.
type nodeMeta struct {
	AppID        string
	InternalAddr string
	ActorTypes   []string
}

// encode lays the metadata out compactly: a version byte, then app id and
// internal address as uvarint-length-prefixed strings, then a uvarint count
// of actor types each length-prefixed. It fails when the result exceeds
// memberlist's MetaMaxSize (512 bytes), which bounds how many actor types a
// sidecar can advertise.
func (m nodeMeta) encode() ([]byte, error) {
	size := 1 + strLen(m.AppID) + strLen(m.InternalAddr) + binary.MaxVarintLen64
	for _, t := range m.ActorTypes {
		size += strLen(t)
	}
	if size > 4*memberlist.MetaMaxSize { // reject absurd input before allocating
		return nil, fmt.Errorf("discovery: node metadata too large (%d+ bytes, limit %d)", size, memberlist.MetaMaxSize)
	}
	b := make([]byte, 0, size)
	b = append(b, metaVersion)
	b = appendStr(b, m.AppID)
	b = appendStr(b, m.InternalAddr)
	b = binary.AppendUvarint(b, uint64(len(m.ActorTypes)))
	for _, t := range m.ActorTypes {
		b = appendStr(b, t)
	}
	if len(b) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("discovery: node metadata is %d bytes, limit %d (too many or too long actor types?)", len(b), memberlist.MetaMaxSize)
	}
	return b, nil
}

func strLen(s string) int { return binary.MaxVarintLen64 + len(s) }

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

var errBadMeta = errors.New("discovery: malformed node metadata")

// decodeMeta parses encode's output; anything else is an error (a member of
// another kind of cluster, or a newer layout).
func decodeMeta(b []byte) (nodeMeta, error) {
	var m nodeMeta
	if len(b) == 0 {
		return m, fmt.Errorf("%w: empty", errBadMeta)
	}
	if b[0] != metaVersion {
		return m, fmt.Errorf("%w: version %d, want %d", errBadMeta, b[0], metaVersion)
	}
	r := metaReader{b: b[1:]}
	m.AppID = r.str()
	m.InternalAddr = r.str()
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.b)) { // each type takes at least one byte
		r.err = fmt.Errorf("%w: %d actor types in %d bytes", errBadMeta, n, len(r.b))
	}
	if r.err == nil && n > 0 {
		m.ActorTypes = make([]string, 0, n)
		for i := uint64(0); i < n && r.err == nil; i++ {
			m.ActorTypes = append(m.ActorTypes, r.str())
		}
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%w: %d trailing bytes", errBadMeta, len(r.b))
	}
	if r.err == nil && m.AppID == "" {
		r.err = fmt.Errorf("%w: empty app id", errBadMeta)
	}
	if r.err != nil {
		return nodeMeta{}, r.err
	}
	return m, nil
}

type metaReader struct {
	b   []byte
	err error
}

func (r *metaReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = fmt.Errorf("%w: bad length", errBadMeta)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *metaReader) str() string {
	n := r.uvarint()
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.b)) {
		r.err = fmt.Errorf("%w: string of %d bytes in %d", errBadMeta, n, len(r.b))
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}
