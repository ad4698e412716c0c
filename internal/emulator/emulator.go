// Package emulator starts and stops the gcloud Firestore emulator for tests
// and the local stack. The emulator is a shell script that forks a JVM, so it
// runs in its own process group and is stopped by signalling the group:
// killing only the script would leave the JVM behind.
package emulator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// DefaultPath is where the gcloud Firestore emulator is installed.
const DefaultPath = "/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud_firestore_emulator"

// InstallHint tells a user how to get the emulator.
const InstallHint = "gcloud components install cloud-firestore-emulator (or apt-get install google-cloud-cli-firestore-emulator)"

// ErrNotInstalled reports a missing emulator; retrying cannot help.
var ErrNotInstalled = errors.New("firestore emulator not installed: " + InstallHint)

// Firestore is a running emulator.
type Firestore struct {
	// Host is "127.0.0.1:PORT", the value for FIRESTORE_EMULATOR_HOST.
	Host string
	cmd  *exec.Cmd
	done chan struct{}
}

// Options configures [StartFirestore].
type Options struct {
	// Path of the emulator launcher. Defaults to $FIRESTORE_EMULATOR_PATH, then DefaultPath.
	Path string
	// Port to bind on 127.0.0.1. Zero picks a free port.
	Port int
	// Log receives the emulator's output. Defaults to discarding it.
	Log io.Writer
	// StartTimeout bounds the wait for readiness. Defaults to 60s (a cold JVM
	// on a busy 2-core machine needs 10s or more).
	StartTimeout time.Duration
}

// StartFirestore starts the emulator and waits until it answers.
func StartFirestore(ctx context.Context, o Options) (*Firestore, error) {
	if o.Path == "" {
		o.Path = os.Getenv("FIRESTORE_EMULATOR_PATH")
	}
	if o.Path == "" {
		o.Path = DefaultPath
	}
	if _, err := os.Stat(o.Path); err != nil {
		return nil, fmt.Errorf("%w (looked at %s)", ErrNotInstalled, o.Path)
	}
	if o.Port == 0 {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		o.Port = p
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 60 * time.Second
	}
	host := "127.0.0.1:" + strconv.Itoa(o.Port)
	cmd := exec.Command(o.Path, "start", "--host=127.0.0.1", "--port="+strconv.Itoa(o.Port))
	cmd.Stdout, cmd.Stderr = o.Log, o.Log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start firestore emulator %s: %w", o.Path, err)
	}
	f := &Firestore{Host: host, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(f.done) }()

	deadline := time.Now().Add(o.StartTimeout)
	for {
		resp, err := http.Get("http://" + host + "/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return f, nil
			}
		}
		select {
		case <-f.done:
			return nil, fmt.Errorf("firestore emulator exited before it was ready (port %d busy?)", o.Port)
		case <-ctx.Done():
			f.Stop()
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			f.Stop()
			return nil, fmt.Errorf("firestore emulator not ready on %s after %s", host, o.StartTimeout)
		}
	}
}

// Stop terminates the emulator's process group and waits for it to exit.
func (f *Firestore) Stop() {
	pgid := f.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-f.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-f.done
	}
	// The JVM may outlive the script by a moment; make sure the group is gone.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// Reset deletes every document of project in the default database.
func Reset(host, project string) error {
	req, _ := http.NewRequest(http.MethodDelete,
		"http://"+host+"/emulator/v1/projects/"+project+"/databases/(default)/documents", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("firestore emulator reset: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("firestore emulator reset: status %s", resp.Status)
	}
	return nil
}

// FreePort returns a free TCP port on 127.0.0.1.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
