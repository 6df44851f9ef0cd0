package main

// The few protobuf messages the benchmark sends, marshalled by hand the way gogo's generated code does (the
// XXX_Size/XXX_Marshal/XXX_Unmarshal fast path), because containerd's task API is not packaged in Debian. Only
// the wire format matters: the shim and our server see the same bytes as from containerd's own client.

import (
	"encoding/binary"
	"errors"
	"fmt"
)

var errTruncated = errors.New("truncated protobuf message")

func sizeVarint(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func sizeString(field int, s string) int {
	if s == "" {
		return 0
	}
	return sizeVarint(uint64(field<<3|2)) + sizeVarint(uint64(len(s))) + len(s)
}

func appendString(b []byte, field int, s string) []byte {
	if s == "" {
		return b
	}
	b = binary.AppendUvarint(b, uint64(field<<3|2))
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// fields walks a message, calling visit with each field's number, wire type, varint value (types 0) or bytes
// (type 2). Fixed-width fields are skipped: none of these messages has one.
func fields(b []byte, visit func(field int, wire int, varint uint64, bytes []byte) error) error {
	for len(b) > 0 {
		key, n := binary.Uvarint(b)
		if n <= 0 {
			return errTruncated
		}
		b = b[n:]
		field, wire := int(key>>3), int(key&7)
		switch wire {
		case 0:
			v, n := binary.Uvarint(b)
			if n <= 0 {
				return errTruncated
			}
			b = b[n:]
			if err := visit(field, wire, v, nil); err != nil {
				return err
			}
		case 1:
			if len(b) < 8 {
				return errTruncated
			}
			b = b[8:]
		case 2:
			l, n := binary.Uvarint(b)
			if n <= 0 || uint64(len(b)-n) < l {
				return errTruncated
			}
			bytes := b[n : n+int(l)]
			b = b[n+int(l):]
			if err := visit(field, wire, 0, bytes); err != nil {
				return err
			}
		case 5:
			if len(b) < 4 {
				return errTruncated
			}
			b = b[4:]
		default:
			return fmt.Errorf("unsupported wire type %d", wire)
		}
	}
	return nil
}

// StateRequest is containerd.task.v2.StateRequest {string id = 1; string exec_id = 2}.
type StateRequest struct {
	ID     string
	ExecID string
}

func (m *StateRequest) Reset()         { *m = StateRequest{} }
func (m *StateRequest) String() string { return fmt.Sprintf("StateRequest{%q, %q}", m.ID, m.ExecID) }
func (*StateRequest) ProtoMessage()    {}
func (m *StateRequest) XXX_Size() int  { return sizeString(1, m.ID) + sizeString(2, m.ExecID) }
func (m *StateRequest) XXX_Marshal(b []byte, _ bool) ([]byte, error) {
	return appendString(appendString(b, 1, m.ID), 2, m.ExecID), nil
}
func (m *StateRequest) XXX_Unmarshal(b []byte) error {
	return fields(b, func(field, wire int, _ uint64, bytes []byte) error {
		switch {
		case field == 1 && wire == 2:
			m.ID = string(bytes)
		case field == 2 && wire == 2:
			m.ExecID = string(bytes)
		}
		return nil
	})
}

// Timestamp is google.protobuf.Timestamp {int64 seconds = 1; int32 nanos = 2}.
type Timestamp struct {
	Seconds int64
	Nanos   int32
}

// StateResponse is containerd.task.v2.StateResponse; every field is decoded, as containerd's client does.
type StateResponse struct {
	ID         string
	Bundle     string
	Pid        uint32
	Status     int32
	Stdin      string
	Stdout     string
	Stderr     string
	Terminal   bool
	ExitStatus uint32
	ExitedAt   Timestamp
	ExecID     string
}

func (m *StateResponse) Reset()         { *m = StateResponse{} }
func (m *StateResponse) String() string { return fmt.Sprintf("%+v", *m) }
func (*StateResponse) ProtoMessage()    {}
func (m *StateResponse) XXX_Size() int  { panic("StateResponse is never sent") }
func (m *StateResponse) XXX_Marshal([]byte, bool) ([]byte, error) {
	panic("StateResponse is never sent")
}
func (m *StateResponse) XXX_Unmarshal(b []byte) error {
	return fields(b, func(field, wire int, v uint64, bytes []byte) error {
		switch field {
		case 1:
			m.ID = string(bytes)
		case 2:
			m.Bundle = string(bytes)
		case 3:
			m.Pid = uint32(v)
		case 4:
			m.Status = int32(v)
		case 5:
			m.Stdin = string(bytes)
		case 6:
			m.Stdout = string(bytes)
		case 7:
			m.Stderr = string(bytes)
		case 8:
			m.Terminal = v != 0
		case 9:
			m.ExitStatus = uint32(v)
		case 10:
			return fields(bytes, func(field, wire int, v uint64, _ []byte) error {
				switch field {
				case 1:
					m.ExitedAt.Seconds = int64(v)
				case 2:
					m.ExitedAt.Nanos = int32(v)
				}
				return nil
			})
		case 11:
			m.ExecID = string(bytes)
		}
		return nil
	})
}

// StringValue is google.protobuf.StringValue {string value = 1}: the echo benchmark's message.
type StringValue struct {
	Value string
}

func (m *StringValue) Reset()         { *m = StringValue{} }
func (m *StringValue) String() string { return fmt.Sprintf("StringValue{%q}", m.Value) }
func (*StringValue) ProtoMessage()    {}
func (m *StringValue) XXX_Size() int  { return sizeString(1, m.Value) }
func (m *StringValue) XXX_Marshal(b []byte, _ bool) ([]byte, error) {
	return appendString(b, 1, m.Value), nil
}
func (m *StringValue) XXX_Unmarshal(b []byte) error {
	return fields(b, func(field, wire int, _ uint64, bytes []byte) error {
		if field == 1 && wire == 2 {
			m.Value = string(bytes)
		}
		return nil
	})
}
