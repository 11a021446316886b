package procstat

import (
	"os"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    time.Duration
		wantErr bool
	}{
		{
			name: "plain",
			in:   "1234 (outrigger) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 100 1000000 2000 18446744073709551615",
			want: 3 * time.Second, // (250+50) ticks at 100 Hz
		},
		{
			name: "command with spaces and parens",
			in:   "42 (a) b (c) R 1 42 42 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 5 0 0",
			want: 100 * time.Millisecond,
		},
		{name: "truncated", in: "42 (x) R 1 2 3", wantErr: true},
		{name: "no command", in: "garbage", wantErr: true},
		{name: "bad number", in: "1 (x) S 1 1 1 0 -1 0 0 0 0 0 zz 3 0 0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStat([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseStatus(t *testing.T) {
	in := "Name:\tx\nVmPeak:\t  9999 kB\nVmHWM:\t    2048 kB\nVmRSS:\t    1024 kB\nThreads:\t3\n"
	m, err := parseStatus([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS != 1024*1024 || m.Peak != 2048*1024 {
		t.Fatalf("got %+v", m)
	}
	if _, err := parseStatus([]byte("Name:\tkthreadd\n")); err == nil {
		t.Fatal("want error for status without VmRSS")
	}
}

func TestSelf(t *testing.T) {
	// Burn a little CPU so the reading is non-zero even at 10 ms tick resolution.
	deadline := time.Now().Add(30 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ {
		_ = x * x
	}
	cpu, err := CPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if cpu <= 0 {
		t.Fatalf("cpu = %v after busy loop", cpu)
	}
	m, err := Mem(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS == 0 || m.Peak < m.RSS {
		t.Fatalf("implausible memory %+v", m)
	}
	if _, err := CPU(-1); err == nil {
		t.Fatal("want error for pid -1")
	}
}
