package collect

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"
	"google.golang.org/genai"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/geminihooks/geminihooks/shared/event"
	"github.com/geminihooks/geminihooks/shared/gemini"
)

// VideoObject is the Cloud Storage object name of the n-th video of a job.
func VideoObject(jobID string, n int) string { return fmt.Sprintf("videos/%s/%d.mp4", jobID, n) }

// collectVideo records a finished video operation's videos (and copies
// them with a [VideoStore]); a failed one's error is the job's. Without a
// store, each video's file is looked up (files.get) for its expiration
// time, so a video that already expired is reported as output_expired
// instead of a dead link.
func (s *Service) collectVideo(ctx context.Context, ev event.JobEvent, op *genai.GenerateVideosOperation) (outcome, error) {
	out := outcome{output: map[string]any{}}
	if op.Error != nil {
		out.output["error"] = sanitize(op.Error)
		out.counts.Failed = 1
	}
	videos := []any{}
	if r := op.Response; r != nil {
		if r.RAIMediaFilteredCount > 0 {
			out.output["rai_filtered_count"] = int64(r.RAIMediaFilteredCount)
			out.output["rai_filtered_reasons"] = stringsToAny(r.RAIMediaFilteredReasons)
		}
		for i, gv := range r.GeneratedVideos {
			if gv == nil || gv.Video == nil {
				continue
			}
			v := gv.Video
			entry := map[string]any{"index": int64(i), "mime_type": v.MIMEType}
			fileID := ""
			if v.URI != "" {
				entry["uri"] = v.URI
				if id, ok := gemini.FileID(v.URI); ok {
					fileID = id
					entry["file_name"] = "files/" + id
				}
			}
			if s.o.Videos == nil && fileID != "" {
				f, err := s.o.Gemini.FileInfo(ctx, "files/"+fileID)
				if err != nil {
					return outcome{}, err
				}
				if !f.ExpirationTime.IsZero() {
					entry["expire_time"] = f.ExpirationTime.UTC()
				}
			}
			if s.o.Videos != nil {
				uri, n, err := s.copyVideo(ctx, ev.JobID, i, v.URI, v.VideoBytes, v.MIMEType)
				if err != nil {
					return outcome{}, err
				}
				if uri != "" {
					entry["gcs_uri"] = uri
					entry["bytes"] = n
				}
			} else if len(v.VideoBytes) > 0 {
				entry["inline_bytes"] = int64(len(v.VideoBytes)) // too big for Firestore; set VIDEO_BUCKET to keep them
			}
			videos = append(videos, entry)
		}
	}
	out.output["videos"] = videos
	out.counts.Results = len(videos)
	return out, nil
}

// copyVideo streams one video (from its Gemini URI, or its inline bytes)
// into the video store.
func (s *Service) copyVideo(ctx context.Context, jobID string, n int, uri string, inline []byte, mime string) (string, int64, error) {
	if mime == "" {
		mime = "video/mp4"
	}
	var r io.Reader
	switch {
	case uri != "":
		rc, err := s.o.Gemini.OpenFile(ctx, uri)
		if err != nil {
			return "", 0, err
		}
		defer rc.Close()
		r = rc
	case len(inline) > 0:
		r = bytes.NewReader(inline)
	default:
		return "", 0, nil
	}
	cr := &countingReader{r: r}
	dst, err := s.o.Videos.Put(ctx, VideoObject(jobID, n), mime, cr)
	if err != nil {
		return "", 0, err
	}
	return dst, cr.n, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// GCSVideos is a [VideoStore] on a Cloud Storage bucket.
type GCSVideos struct {
	bucket string
	b      *storage.BucketHandle
}

// NewGCSVideos returns a VideoStore writing to bucket.
func NewGCSVideos(c *storage.Client, bucket string) *GCSVideos {
	return &GCSVideos{bucket: bucket, b: c.Bucket(bucket)}
}

// Put streams r into the object unless it already exists. The write carries
// a does-not-exist precondition: the Collector's role on the bucket
// (roles/storage.objectCreator) may create objects but not replace them, and
// an existing object under this job's name is the complete copy of an earlier
// attempt (a GCS object appears only once its upload finished). So a 412 is
// success, and r is still read to its end so the caller's byte count is the
// video's size either way.
func (g *GCSVideos) Put(ctx context.Context, object, contentType string, r io.Reader) (string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // aborts the upload if copying fails
	uri := "gs://" + g.bucket + "/" + object
	w := g.b.Object(object).If(storage.Conditions{DoesNotExist: true}).NewWriter(ctx)
	w.ContentType = contentType
	_, err := io.Copy(w, r)
	if err == nil {
		err = w.Close()
	}
	switch {
	case err == nil:
		return uri, nil
	case isPreconditionFailed(err):
		if _, derr := io.Copy(io.Discard, r); derr != nil {
			return "", fmt.Errorf("gcs write %s: object exists; reading the rest of the source: %w (retryable)", uri, derr)
		}
		return uri, nil
	}
	return "", fmt.Errorf("gcs write %s: %w (retryable)", uri, err)
}

// isPreconditionFailed reports GCS's 412, on the JSON API (googleapi) or the
// gRPC API (FailedPrecondition).
func isPreconditionFailed(err error) bool {
	var ge *googleapi.Error
	if errors.As(err, &ge) && ge.Code == http.StatusPreconditionFailed {
		return true
	}
	return status.Code(err) == codes.FailedPrecondition
}

func stringsToAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
