# mk/loadtest.mk - `make loadtest`: the load test of issue 4 (bench/load_test.sh)
# against $(BUILD)/backpropd on 127.0.0.1: LOAD_SECONDS (default 60) of
# predictions from wrk -t2 -c64 while two training jobs run and datasets are
# uploaded, the daemon's resident memory sampled every second, then SIGTERM
# under load and a restart that resumes the interrupted jobs.  Prints the
# memory curve and JSON summary lines; exits non-zero on a failed request, a
# crash, memory growth over 20 % after warm-up, or a job that does not finish.
#
#   make loadtest
#   make loadtest LOAD_SECONDS=20
#   make loadtest LOAD_OUT=build/loadtest     (keep rss.csv, wrk output, log)

LOAD_SECONDS ?= 60

.PHONY: loadtest
loadtest: $(BUILD)/backpropd
	LOAD_SECONDS=$(LOAD_SECONDS) $(if $(LOAD_OUT),LOAD_OUT=$(LOAD_OUT)) bash bench/load_test.sh $(BUILD)
