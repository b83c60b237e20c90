# maximui: `make run` serves the dashboard, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# `make fake-maxim` serves a fake Maxim here; `make run` and `make worker` add it to the outbound policy to
# try things out. `make fake-maxim FAKE_MAXIM_PORT=8790` serves it elsewhere; pass the same port to run/worker.
FAKE_MAXIM_PORT ?= 8765
FAKE_MAXIM ?= http://127.0.0.1:$(FAKE_MAXIM_PORT)

.PHONY: run worker test install check bench fake-maxim format clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit("maximui needs Python 3.11 or newer") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

.env.local: | $(BIN)/python $(VENV)/.installed
	$(BIN)/python -m maximui.localenv

# How often an idle task worker looks for work: a batch starts at most this long after its click
# (db_worker's default, 1 s, made every start wait half a second on average; 0.1 s costs an idle
# worker about 3% of one core on SQLite).
WORKER_INTERVAL ?= 0.1

run: install .env.local
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py mark_interrupted_runs
	$(BIN)/python manage.py ensure_admin --url http://$(HOST):$(PORT)/
	$(BIN)/python manage.py resume_batches --all
	MAXIMUI_ALLOWED_BASE_URLS="$${MAXIMUI_ALLOWED_BASE_URLS:-https://api.getmaxim.ai},$(FAKE_MAXIM)" \
	$(BIN)/python -m maximui.supervise \
	  $(BIN)/gunicorn maximui.wsgi --bind $(HOST):$(PORT) --workers 2 --threads 8 --timeout 150 --access-logfile - \
	  ::: $(BIN)/python manage.py db_worker --no-startup-delay --interval $(WORKER_INTERVAL)

# Another task worker beside `make run` (or one restarted by hand): it resumes running batches first.
worker: install .env.local
	MAXIMUI_ALLOWED_BASE_URLS="$${MAXIMUI_ALLOWED_BASE_URLS:-https://api.getmaxim.ai},$(FAKE_MAXIM)" \
	$(BIN)/python manage.py db_worker --no-startup-delay --interval $(WORKER_INTERVAL)

test: install
	MAXIMUI_TESTING=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

fake-maxim: install
	@echo "Fake Maxim on $(FAKE_MAXIM) (key test-key-1234); \`make run\` allows this origin. Elsewhere add it to MAXIMUI_ALLOWED_BASE_URLS."
	$(BIN)/python -m devtools.maxim_server --port $(FAKE_MAXIM_PORT)

# Formats with the settings in pyproject.toml; `# fmt: skip` marks lines laid out by hand.
format: install
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) staticfiles .pytest_cache
