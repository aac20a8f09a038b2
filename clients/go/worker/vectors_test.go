package worker

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"google.golang.org/grpc/codes"

	pb "github.com/stella-ops/orchestrator/clients/go/gen/stella/orchestrator/v1"
)

// The shared vectors in tests/vectors: the Python and Rust SDKs check the same files.
var vectorsDir = filepath.Join("..", "..", "..", "tests", "vectors")

func loadVectors(t *testing.T, name string, into any) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(vectorsDir, name))
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	if err := json.Unmarshal(raw, into); err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
}

func TestVectorsArtifactDigests(t *testing.T) {
	var doc struct {
		Cases []struct {
			Name      string `json:"name"`
			DataHex   string `json:"data_hex"`
			Repeat    *struct{ Byte, Count int }
			SizeBytes int    `json:"size_bytes"`
			Digest    string `json:"digest"`
		} `json:"cases"`
	}
	loadVectors(t, "artifact_digests.json", &doc)
	if len(doc.Cases) == 0 {
		t.Fatal("no cases")
	}
	for _, c := range doc.Cases {
		data, err := hex.DecodeString(c.DataHex)
		if err != nil {
			t.Fatal(err)
		}
		if c.Repeat != nil {
			data = bytes.Repeat([]byte{byte(c.Repeat.Byte)}, c.Repeat.Count)
		}
		if len(data) != c.SizeBytes {
			t.Errorf("%s: size %d, want %d", c.Name, len(data), c.SizeBytes)
		}
		if got := BytesDigest(data); got != c.Digest {
			t.Errorf("%s: digest %s, want %s", c.Name, got, c.Digest)
		}
	}
}

func TestVectorsCanonicalJSON(t *testing.T) {
	var doc struct {
		Cases []struct{ Name, Input, Canonical, Digest string } `json:"cases"`
	}
	loadVectors(t, "canonical_json.json", &doc)
	if len(doc.Cases) == 0 {
		t.Fatal("no cases")
	}
	for _, c := range doc.Cases {
		for _, text := range []string{c.Input, c.Canonical} { // canonical output is a fixed point
			var value any
			if err := json.Unmarshal([]byte(text), &value); err != nil {
				t.Fatalf("%s: %v", c.Name, err)
			}
			got, err := CanonicalJSON(value)
			if err != nil {
				t.Fatalf("%s: %v", c.Name, err)
			}
			if string(got) != c.Canonical {
				t.Errorf("%s:\n got %s\nwant %s", c.Name, got, c.Canonical)
			}
			if d, _ := JSONDigest(value); d != c.Digest {
				t.Errorf("%s: digest %s, want %s", c.Name, d, c.Digest)
			}
		}
	}
}

func TestVectorsBackoff(t *testing.T) {
	var doc struct {
		Reference struct {
			Seed    string   `json:"seed"`
			Outputs []string `json:"outputs"`
		} `json:"splitmix64_reference"`
		Cases []struct {
			Seed       string    `json:"seed"`
			InitialS   float64   `json:"initial_s"`
			CapS       float64   `json:"cap_s"`
			Multiplier float64   `json:"multiplier"`
			Ceilings   []float64 `json:"ceilings"`
			Delays     []string  `json:"delays"`
			DelayBits  []string  `json:"delay_bits"`
		} `json:"cases"`
	}
	loadVectors(t, "backoff.json", &doc)
	seed, _ := strconv.ParseUint(doc.Reference.Seed, 10, 64)
	gen := NewSplitMix64(seed)
	for i, want := range doc.Reference.Outputs {
		if got := strconv.FormatUint(gen.Uint64(), 10); got != want {
			t.Errorf("splitmix64 output %d: %s, want %s", i, got, want)
		}
	}
	if len(doc.Cases) == 0 {
		t.Fatal("no cases")
	}
	for _, c := range doc.Cases {
		seed, err := strconv.ParseUint(c.Seed, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		b := &Backoff{InitialS: c.InitialS, CapS: c.CapS, Multiplier: c.Multiplier, Rand: NewSplitMix64(seed).Float64}
		for n, want := range c.Ceilings {
			if got := b.Ceiling(n); got != want {
				t.Errorf("seed %s: ceiling(%d) = %v, want %v", c.Seed, n, got, want)
			}
		}
		for i := range c.Delays {
			got := b.NextSeconds()
			bits := strconv.FormatUint(math.Float64bits(got), 16)
			for len(bits) < 16 {
				bits = "0" + bits
			}
			if bits != c.DelayBits[i] {
				t.Errorf("seed %s: delay %d bits %s, want %s", c.Seed, i, bits, c.DelayBits[i])
			}
			if want, _ := strconv.ParseFloat(c.Delays[i], 64); want != got {
				t.Errorf("seed %s: delay %d = %v, want %s", c.Seed, i, got, c.Delays[i])
			}
		}
	}
}

func TestVectorsErrors(t *testing.T) {
	var doc struct {
		Classes map[string]struct {
			Enum   string `json:"enum"`
			Number int32  `json:"number"`
		} `json:"error_classes"`
		JobFailures []struct {
			Kind, Class string
			Retryable   bool
		} `json:"job_failures"`
		LeaseLostReasons []string `json:"lease_lost_reasons"`
		StatusCodes      []struct {
			Code, Reason, Kind string
			Number             uint32
			Reconnect          bool
		} `json:"status_codes"`
	}
	loadVectors(t, "errors.json", &doc)
	if len(doc.Classes) != len(ErrorClasses) {
		t.Errorf("%d classes, vectors have %d", len(ErrorClasses), len(doc.Classes))
	}
	for label, want := range doc.Classes {
		got, err := ErrorClassEnum(label)
		if err != nil || int32(got) != want.Number || got.String() != want.Enum {
			t.Errorf("class %s: %v (%v), want %s", label, got, err, want.Enum)
		}
		if ErrorClassLabel(pb.ErrorClass(want.Number)) != label {
			t.Errorf("label of %s is not %s", want.Enum, label)
		}
	}
	made := map[string]*JobError{
		"upstream_throttled":   UpstreamThrottled("", 0),
		"upstream_unavailable": UpstreamUnavailable(""),
		"upstream_rejected":    UpstreamRejected(""),
		"parse_error":          ParseError(""),
		"schema_mismatch":      SchemaMismatch(""),
		"job_failure":          Fail("other", "", true),
	}
	for _, f := range doc.JobFailures {
		got := made[f.Kind]
		if got == nil || got.Class != f.Class || got.Retryable != f.Retryable {
			t.Errorf("%s: %+v, want class %s retryable %v", f.Kind, got, f.Class, f.Retryable)
		}
	}
	if len(doc.LeaseLostReasons) != len(LeaseLostReasons) {
		t.Errorf("lease lost reasons %v, want %v", LeaseLostReasons, doc.LeaseLostReasons)
	}
	for _, r := range doc.LeaseLostReasons {
		if !LeaseLostReasons[r] {
			t.Errorf("%s is not a lease lost reason", r)
		}
	}
	for _, c := range doc.StatusCodes {
		code := codes.Code(c.Number)
		if code.String() != goCodeName(c.Code) {
			t.Errorf("code %d is %s, vectors say %s", c.Number, code, c.Code)
		}
		e := &RPCError{Code: code, Reason: c.Reason}
		if e.Kind() != c.Kind || e.Retryable() != c.Reconnect {
			t.Errorf("%s/%s: kind %s reconnect %v, want %s %v", c.Code, c.Reason, e.Kind(), e.Retryable(), c.Kind, c.Reconnect)
		}
	}
}

// goCodeName maps "PERMISSION_DENIED" to Go's "PermissionDenied" (and "OK" to "OK").
func goCodeName(name string) string {
	out := []byte{}
	upper := true
	for i := 0; i < len(name); i++ {
		ch := name[i]
		switch {
		case ch == '_':
			upper = true
		case upper:
			out = append(out, ch)
			upper = false
		default:
			out = append(out, ch+('a'-'A'))
		}
	}
	switch name {
	case "OK":
		return "OK"
	case "CANCELLED": // Python's spelling; Go says Canceled
		return "Canceled"
	}
	return string(out)
}
