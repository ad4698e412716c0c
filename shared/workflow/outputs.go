package workflow

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"cloud.google.com/go/firestore"
	"google.golang.org/api/iterator"

	"github.com/geminihooks/geminihooks/shared/ledger"
)

// templateData builds what step idx's templates see: the run, its input,
// the trigger's job and every earlier finished step's job, read from the
// ledger as the Collector stored them.
func (s *Service) templateData(ctx context.Context, r *Run, d *Definition, idx int) (*TemplateData, error) {
	data := &TemplateData{Input: r.Input, Steps: map[string]*StepOutput{}}
	if data.Input == nil {
		data.Input = map[string]any{}
	}
	data.Run.ID, data.Run.Workflow, data.Attempt = r.RunID, r.Workflow, r.Steps[idx].Attempt
	if r.Trigger != nil {
		out, err := s.output(ctx, r.Trigger.JobID)
		if err != nil {
			return nil, err
		}
		out.Name, out.Status = "trigger", r.Trigger.State
		data.Trigger = out
	}
	for i := 0; i < idx; i++ {
		st := r.Steps[i]
		out := &StepOutput{Name: st.Name, Status: st.Status, State: st.State, JobID: st.JobID, Error: st.Error}
		if st.JobID != "" && st.Status == StepSucceeded {
			o, err := s.output(ctx, st.JobID)
			if err != nil {
				return nil, err
			}
			o.Name, o.Status, o.Error = st.Name, st.Status, st.Error
			out = o
		}
		data.Steps[st.Name] = out
	}
	return data, nil
}

// output reads a job's collected results.
func (s *Service) output(ctx context.Context, jobID string) (*StepOutput, error) {
	job, err := s.o.Ledger.GetJob(ctx, jobID)
	if err != nil {
		return nil, err
	}
	out := &StepOutput{JobID: jobID, State: job.State, Labels: job.Labels}
	if job.Error != nil {
		out.Error = errText(job.Error)
	} else if job.CollectError != nil {
		out.Error = errText(job.CollectError)
	}
	switch job.Kind {
	case KindVideo:
		vs, _ := job.Output["videos"].([]any)
		for _, v := range vs {
			m, _ := v.(map[string]any)
			if u, _ := m["uri"].(string); u != "" {
				out.Videos = append(out.Videos, u)
			}
		}
		out.Text = strings.Join(out.Videos, "\n")
		out.Results = out.Videos
		return out, nil
	case KindInteraction:
		if t, ok := job.Output["text"].(string); ok {
			out.Text, out.Results = t, []string{t}
			return out, nil
		}
	}
	res, err := s.results(ctx, jobID)
	if err != nil {
		return nil, err
	}
	out.Results = res
	out.Text = strings.Join(res, "\n")
	return out, nil
}

// results returns the texts of jobs/{id}/results in index order, joining
// split parts, up to MaxTemplateResults responses.
func (s *Service) results(ctx context.Context, jobID string) ([]string, error) {
	col := s.o.Firestore.Collection(ledger.JobsCollection).Doc(jobID).Collection(ledger.ResultsCollection)
	it := col.OrderBy(firestore.DocumentID, firestore.Asc).Documents(ctx)
	defer it.Stop()
	var out []string
	last := int64(-1)
	for {
		snap, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("firestore read %s: %w (retryable)", col.Path, err)
		}
		var r ledger.Result
		if err := snap.DataTo(&r); err != nil {
			return nil, fmt.Errorf("decode %s: %w", snap.Ref.Path, err)
		}
		if r.Index == last && r.Part > 1 {
			out[len(out)-1] += r.Text
			continue
		}
		if len(out) >= s.o.MaxTemplateResults {
			return out, nil
		}
		last = r.Index
		out = append(out, r.Text)
	}
}
