package devstack

import (
	"errors"
	"testing"
	"time"

	"github.com/geminihooks/geminihooks/shared/gemsim"
)

func TestParseFaults(t *testing.T) {
	tests := []struct {
		in      string
		want    Faults
		wantErr bool
	}{
		{in: "", want: Faults{JobDuration: DefaultJobDuration}},
		{in: "dup=0.3,shuffle,delay=200ms,drop=0.1,timescale=3600", want: Faults{JobDuration: DefaultJobDuration, Sim: gemsim.Faults{
			DuplicateRate: 0.3, Shuffle: DefaultShuffle, Delay: 200 * time.Millisecond, DropRate: 0.1, TimeScale: 3600}}},
		{in: " shuffle=5s , jobs=2s ", want: Faults{JobDuration: 2 * time.Second, Sim: gemsim.Faults{Shuffle: 5 * time.Second}}},
		{in: "DUP=1", want: Faults{JobDuration: DefaultJobDuration, Sim: gemsim.Faults{DuplicateRate: 1}}},
		{in: "ids=mixed,filettl=1h,redirect", want: Faults{JobDuration: DefaultJobDuration, IDs: gemsim.IDFormMixed, FileTTL: time.Hour, Redirect: true}},
		{in: "ids=bare,redirect=false", want: Faults{JobDuration: DefaultJobDuration, IDs: gemsim.IDFormBare}},
		{in: "lose=0.1,drop=1", want: Faults{JobDuration: DefaultJobDuration, Sim: gemsim.Faults{LoseRate: 0.1, DropRate: 1}}},
		{in: "lose=2", wantErr: true},
		{in: "ids=weird", wantErr: true},
		{in: "filettl=0s", wantErr: true},
		{in: "redirect=maybe", wantErr: true},
		{in: "dup=1.5", wantErr: true},
		{in: "dup", wantErr: true},
		{in: "drop=-0.1", wantErr: true},
		{in: "delay=soon", wantErr: true},
		{in: "timescale=0", wantErr: true},
		{in: "timescale", wantErr: true},
		{in: "jitter=1s", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseFaults(tt.in)
		if tt.wantErr {
			if !errors.Is(err, ErrInvalidFaults) {
				t.Errorf("ParseFaults(%q) error = %v, want ErrInvalidFaults", tt.in, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseFaults(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestSimDurationsFollowTimeScale(t *testing.T) {
	f := Faults{JobDuration: 500 * time.Millisecond, Sim: gemsim.Faults{TimeScale: 100}}
	if got := f.simDurations().Batch; got != 50*time.Second {
		t.Errorf("sim-time job duration = %v, want 50s (0.5s wall at ×100)", got)
	}
	f.Sim.TimeScale = 0
	if got := f.simDurations().Video; got != 500*time.Millisecond {
		t.Errorf("unscaled job duration = %v, want 500ms", got)
	}
}
