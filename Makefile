# stlib — two commands on a fresh machine:
#   make demo   set up .venv, stylise the bundled photo, write out/demo.png   (make lab: open the course)
#   make test   set up .venv, run every test: unit tests, all notebooks (nbval), the real-browser studio test
#   make present   the studio alone, for a projector, without code (Voila; open the printed URL)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.stlib-installed
# Fast mode for notebooks under test; offline seeded weights so no test touches the network.
# OMP_WAIT_POLICY=PASSIVE: idle OpenMP threads sleep instead of spinning (much faster on a busy 2-core box).
TEST_ENV := STLIB_FAST=1 STLIB_WEIGHTS=random STLIB_OFFLINE=1 OMP_WAIT_POLICY=PASSIVE

.PHONY: venv demo lab present student test test-unit test-notebooks test-course test-browser test-matrix browser-deps bench images clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/stlib demo

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

# The studio for a lecture: notebooks/present.ipynb served by Voila (only outputs, no code cells), laid out
# for a 1280x720 projector. PORT=8866 by default; the URL to open is printed.
PORT ?= 8866
present: $(STAMP)
	$(BIN)/voila notebooks/present.ipynb --no-browser --port=$(PORT) --Voila.ip=127.0.0.1

# The student edition: the notebooks without exercise solutions, in student/ (see notebooks/make_student.py;
# outside notebooks/ so that nbval does not collect it)
student: $(STAMP)
	$(BIN)/python notebooks/make_student.py

# Debian's Chromium for the browser test (test tools' own browser downloads do not work offline).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium not found: the browser test will be skipped (install Debian's chromium to run it)"; fi; }

test: $(STAMP) browser-deps
	$(TEST_ENV) $(BIN)/python -m pytest --nbval-lax tests notebooks

test-unit: $(STAMP)
	$(TEST_ENV) $(BIN)/python -m pytest tests -m "not browser"

test-notebooks: $(STAMP)
	$(TEST_ENV) $(BIN)/python -m pytest --nbval-lax notebooks

# The course as students see it: every notebook at students' sizes (not fast mode), each figure checked to
# appear and each figure's claim (course.claim) asserted; offline weights. ~10-15 min on 2 cores, times in
# benchmarks/out/course_times_normal.txt (benchmarks/NOTEBOOK_TIMES.md has measured ones).
test-course: $(STAMP)
	STLIB_COURSE_MODE=normal STLIB_WEIGHTS=random STLIB_OFFLINE=1 OMP_WAIT_POLICY=PASSIVE \
	  $(BIN)/python -m pytest tests/test_course_figures.py

test-browser: $(STAMP) browser-deps
	$(TEST_ENV) $(BIN)/python -m pytest tests -m browser

# The version matrix (noxfile.py): oldest declared versions, newest, each Python. Downloads several GB of
# torch wheels into $(MATRIX_DIR) (outside the repository); not part of `make test` / CI.
MATRIX_DIR ?= $(HOME)/.cache/stlib-matrix
test-matrix: $(STAMP)
	$(BIN)/python -m pip install --quiet "nox>=2024.4" "uv>=0.5"
	STLIB_MATRIX_DIR=$(MATRIX_DIR) $(BIN)/nox $(NOX_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

images: $(STAMP)
	$(BIN)/python images/make_styles.py
	$(BIN)/python images/make_content.py

clean:
	rm -rf $(VENV) out .pytest_cache
