package wire

import (
	"encoding/binary"
	"fmt"
)

// Pair is one uwsgi var: an environ entry or a response header.
type Pair struct {
	Key, Value string
}

// AppendVar appends one key/value pair in the uwsgi vars encoding
// (u16 key length, key, u16 value length, value).
func AppendVar(dst []byte, key, value string) ([]byte, error) {
	if len(key) > MaxVarLen || len(value) > MaxVarLen {
		return dst, fmt.Errorf("var %.40q: %w", key, ErrVarTooLong)
	}
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(key)))
	dst = append(dst, key...)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(value)))
	return append(dst, value...), nil
}

// AppendVars appends every pair in order.
func AppendVars(dst []byte, pairs []Pair) ([]byte, error) {
	var err error
	for _, p := range pairs {
		if dst, err = AppendVar(dst, p.Key, p.Value); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

// RangeVars calls fn for each pair of a vars block, in order. k and v
// alias b: copy them to keep them. It stops at the first error fn returns.
func RangeVars(b []byte, fn func(k, v []byte) error) error {
	for len(b) > 0 {
		k, rest, err := cut(b)
		if err != nil {
			return err
		}
		v, rest, err := cut(rest)
		if err != nil {
			return fmt.Errorf("value of %.40q: %w", k, err)
		}
		if err := fn(k, v); err != nil {
			return err
		}
		b = rest
	}
	return nil
}

// CutVar splits the first pair off a vars block held in a string: k and v
// are substrings of s, so a caller that converted the block once keeps
// every name and value without another copy (and, unlike RangeVars, with
// no callback whose captured variables escape).
func CutVar(s string) (k, v, rest string, err error) {
	if k, rest, err = cut(s); err != nil {
		return "", "", "", err
	}
	if v, rest, err = cut(rest); err != nil {
		return "", "", "", fmt.Errorf("value of %.40q: %w", k, err)
	}
	return k, v, rest, nil
}

func cut[T []byte | string](b T) (field, rest T, err error) {
	if len(b) < 2 {
		return field, rest, ErrShort
	}
	n := int(b[0]) | int(b[1])<<8 // little-endian u16
	if len(b)-2 < n {
		return field, rest, ErrShort
	}
	return b[2 : 2+n], b[2+n:], nil
}

// DecodeVars returns the pairs of a vars block as strings.
func DecodeVars(b []byte) ([]Pair, error) {
	var out []Pair
	err := RangeVars(b, func(k, v []byte) error {
		out = append(out, Pair{Key: string(k), Value: string(v)})
		return nil
	})
	return out, err
}

// AppendResponseHead appends an S frame's payload: u16 status, then the
// headers as vars.
func AppendResponseHead(dst []byte, status int, headers []Pair) ([]byte, error) {
	if status < 0 || status > 0xFFFF {
		return dst, fmt.Errorf("status %d out of range", status)
	}
	dst = binary.LittleEndian.AppendUint16(dst, uint16(status))
	return AppendVars(dst, headers)
}

// ParseResponseHead splits an S frame's payload into the status and the
// vars block of headers (decode it with RangeVars or DecodeVars).
func ParseResponseHead(p []byte) (status int, vars []byte, err error) {
	if len(p) < 2 {
		return 0, nil, fmt.Errorf("response head: %w", ErrShort)
	}
	return int(binary.LittleEndian.Uint16(p)), p[2:], nil
}
