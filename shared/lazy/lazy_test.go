package lazy

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestBuildOnceRetryOnFailure(t *testing.T) {
	builds := 0
	l := &Handler{Name: "x", Build: func(context.Context) (http.Handler, error) {
		builds++
		if builds == 1 {
			return nil, errors.New("transient")
		}
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }), nil
	}}
	want := []int{500, 204, 204}
	for i, code := range want {
		w := httptest.NewRecorder()
		l.ServeHTTP(w, httptest.NewRequest("POST", "/", nil))
		if w.Code != code {
			t.Errorf("request %d: %d, want %d", i, w.Code, code)
		}
	}
	if builds != 2 {
		t.Errorf("built %d times, want 2", builds)
	}
}
