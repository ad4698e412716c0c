package gemsim

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

type videoOp struct {
	id       string
	model    string // without "models/"
	prompt   string
	samples  int
	outcome  string // videoOK, videoFail or videoFiltered
	done     bool
	created  time.Time
	fileIDs  []string
	hookURIs []string
}

// Video outcomes.
const (
	videoOK       = "ok"
	videoFail     = "fail"
	videoFiltered = "filtered"
)

// SimulatedRAIReason is raiMediaFilteredReasons[0] of a video filtered by
// the TriggerRAIFilter trigger.
const SimulatedRAIReason = "The prompt was blocked by the simulated safety filter (" + TriggerRAIFilter + ")."

func (v *videoOp) name() string { return "models/" + v.model + "/operations/" + v.id }

// FakeVideo returns the bytes the simulator serves for sample index of a
// video generated from prompt: a minimal MP4 (ftyp + mdat boxes) whose
// payload is derived from SHA-256 of the prompt, size bytes long (at least
// 32).
func FakeVideo(prompt string, index, size int) []byte {
	var buf bytes.Buffer
	_ = writeFakeVideo(&buf, prompt, index, size)
	return buf.Bytes()
}

func writeFakeVideo(w io.Writer, prompt string, index, size int) error {
	if size < 32 {
		size = 32
	}
	head := make([]byte, 0, 32)
	head = binary.BigEndian.AppendUint32(head, 24)
	head = append(head, "ftypisom"...)
	head = binary.BigEndian.AppendUint32(head, 0x200)
	head = append(head, "isommp41"...)
	head = binary.BigEndian.AppendUint32(head, uint32(size-24))
	head = append(head, "mdat"...)
	if _, err := w.Write(head); err != nil {
		return err
	}
	seed := sha256.Sum256([]byte(prompt + "\x00" + strconv.Itoa(index)))
	remaining := size - len(head)
	var ctr uint64
	for remaining > 0 {
		block := sha256.Sum256(binary.BigEndian.AppendUint64(seed[:], ctr))
		ctr++
		n := min(remaining, len(block))
		if _, err := w.Write(block[:n]); err != nil {
			return err
		}
		remaining -= n
	}
	return nil
}

func (s *Simulator) videoBytes() int {
	if s.opts.VideoBytes > 0 {
		return s.opts.VideoBytes
	}
	return DefaultVideoBytes
}

func (s *Simulator) handleVideoCreate(w http.ResponseWriter, r *http.Request, p routeParams) {
	var body struct {
		Instances []struct {
			Prompt string         `json:"prompt"`
			Image  map[string]any `json:"image"`
			Video  map[string]any `json:"video"`
		} `json:"instances"`
		Parameters struct {
			SampleCount int `json:"sampleCount"`
		} `json:"parameters"`
		WebhookConfig *webhookConfig `json:"webhookConfig"`
	}
	if err := readJSON(r, &body); err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", err.Error())
		return
	}
	if len(body.Instances) == 0 || (body.Instances[0].Prompt == "" && body.Instances[0].Image == nil && body.Instances[0].Video == nil) {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "instances[0] needs a prompt, image or video")
		return
	}
	uris, err := body.WebhookConfig.validURIs()
	if err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", err.Error())
		return
	}
	n := body.Parameters.SampleCount
	if n <= 0 {
		n = 1
	}
	if n > 4 {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "sampleCount must be between 1 and 4")
		return
	}
	v := &videoOp{model: p.model, prompt: body.Instances[0].Prompt, samples: n, outcome: videoOK, created: s.now(), hookURIs: uris}
	switch {
	case strings.HasPrefix(p.model, "fail") || strings.Contains(v.prompt, TriggerFailVideo):
		v.outcome = videoFail
	case strings.Contains(v.prompt, TriggerRAIFilter):
		v.outcome = videoFiltered
	}
	s.mu.Lock()
	for {
		v.id = s.newID(12)
		if _, dup := s.videos[v.id]; !dup {
			break
		}
	}
	s.videos[v.id] = v
	s.mu.Unlock()
	s.after(s.opts.Durations.of(KindVideo, v.name()), func() { _ = s.finishVideo(v.id) })
	writeJSON(w, http.StatusOK, map[string]any{"name": v.name()})
}

func (s *Simulator) finishVideo(id string) error {
	s.mu.Lock()
	v := s.videos[id]
	if v == nil {
		s.mu.Unlock()
		return fmt.Errorf("video operation %s: %w", id, ErrNotFound)
	}
	if v.done {
		s.mu.Unlock()
		return nil
	}
	v.done = true
	switch v.outcome {
	case videoFail:
		s.mu.Unlock()
		return nil // the event catalog has no video failure event
	case videoFiltered:
		// The operation completed (done, no error) without a video: an
		// assumption is that video.generated still fires, as for any
		// completed Veo operation, with nothing to point at.
		data := map[string]any{"id": s.eventID(v.name())}
		uris := v.hookURIs
		s.mu.Unlock()
		s.emit("video.generated", data, uris)
		return nil
	}
	size := s.videoBytes()
	for i := 0; i < v.samples; i++ {
		prompt, idx := v.prompt, i
		f := &simFile{displayName: "video-" + id + "-" + strconv.Itoa(i), mime: "video/mp4", source: "GENERATED",
			created: s.now(), size: int64(max(size, 32)),
			gen: func(w io.Writer) error { return writeFakeVideo(w, prompt, idx, size) }}
		s.addFileLocked(f)
		v.fileIDs = append(v.fileIDs, f.id)
	}
	dl := s.downloadURI(v.fileIDs[0])
	data := map[string]any{"id": s.eventID(v.name()), "output_file_uri": dl, "video_uri": dl, "file_name": "files/" + v.fileIDs[0]}
	uris := v.hookURIs
	s.mu.Unlock()
	s.emit("video.generated", data, uris)
	return nil
}

func (s *Simulator) handleVideoGet(w http.ResponseWriter, r *http.Request, p routeParams) {
	s.mu.Lock()
	v := s.videos[p.id]
	// p.model is empty for the model-less "operations/<id>" name.
	if v == nil || (p.model != "" && v.model != p.model) {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "NOT_FOUND", "Requested entity was not found.")
		return
	}
	op := map[string]any{"name": v.name()}
	if v.done {
		op["done"] = true
		const respType = "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse"
		switch v.outcome {
		case videoFail:
			// A google.rpc.Status: canonical code, no status name.
			op["error"] = map[string]any{"code": codeInternal, "message": "simulated video generation failure (" + TriggerFailVideo + ")"}
		case videoFiltered:
			op["response"] = map[string]any{"@type": respType, "generateVideoResponse": map[string]any{
				"raiMediaFilteredCount":   v.samples,
				"raiMediaFilteredReasons": []any{SimulatedRAIReason},
			}}
		default:
			samples := []any{}
			for _, fid := range v.fileIDs {
				samples = append(samples, map[string]any{"video": map[string]any{"uri": s.downloadURI(fid), "encoding": "video/mp4", "mimeType": "video/mp4"}})
			}
			op["response"] = map[string]any{"@type": respType, "generateVideoResponse": map[string]any{"generatedSamples": samples}}
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, op)
}
