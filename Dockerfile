# One image for every function; FUNCTION_TARGET and FUNCTION_SOURCE choose which one a container
# runs (each Knative Service in knative/ sets both), and kubernetes/ runs `k8s-monitor serve` in it
# (all functions in one process). Build: docker build -t k8s-resource-monitor .
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# pg_dump, pg_restore and psql: backups and restores of a PostgreSQL store (shared/ops/postgres_dump.py).
# Debian's client package pulls in perl (about 47 MB) for its version-choosing wrapper scripts; only the
# three binaries and the libraries they link are kept (their packages marked manual before the purge;
# ldd names /lib/..., dpkg knows each library as /lib/... or /usr/lib/... on Debian 12's merged /usr,
# so both names are asked and the unknown one ignored), so the image
# grows by about 5 MB instead of 60. The client is
# PostgreSQL 15 (Debian 12's): it dumps servers up to 15. For a newer server, install that version's
# client from apt.postgresql.org here instead (README.md, "Backups on PostgreSQL").
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client-15 \
    && cp /usr/lib/postgresql/15/bin/pg_dump /usr/lib/postgresql/15/bin/pg_restore /usr/lib/postgresql/15/bin/psql \
       /usr/local/bin/ \
    && for b in pg_dump pg_restore psql; do ldd /usr/lib/postgresql/15/bin/$b; done \
       | awk '/=> \//{print $3}' | sed 's|^/usr||' | sort -u | sed 'p; s|^|/usr|' \
       | xargs dpkg -S 2>/dev/null | cut -d: -f1 | sort -u | xargs apt-mark manual \
    && apt-get purge -y --auto-remove postgresql-client-15 postgresql-client-common \
    && rm -rf /var/lib/apt/lists/* \
    && pg_dump --version && pg_restore --version && psql --version

# Dependencies before the code: this layer is rebuilt only when requirements.txt changes.
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

# An unprivileged user (numeric, so Kubernetes can verify runAsNonRoot) owning only the mount
# points of the data and backup volumes; the code stays read-only to it.
RUN groupadd --system --gid 10001 monitor \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin monitor \
    && mkdir -p /data /backup \
    && chown 10001:10001 /data /backup

COPY shared/ shared/
COPY functions/ functions/

# The command line, as in the README: the plain Kubernetes install runs `k8s-monitor serve`, and
# operators `kubectl exec ... -- k8s-monitor diagnose` (an executable file in the build context).
COPY scripts/k8s-monitor /usr/local/bin/k8s-monitor

# functions-framework puts only the source file's folder on sys.path: /app makes `shared` importable.
# THREADS: gunicorn's default is 4 per host CPU, far more than SQLite and the containerConcurrency
# of the Services want.
ENV PYTHONPATH=/app \
    THREADS=4 \
    FUNCTION_TARGET=health \
    FUNCTION_SOURCE=functions/health/main.py \
    DATABASE_PATH=/data/k8s_metrics.db \
    BACKUP_DIR=/backup

USER 10001:10001
EXPOSE 8080

# exec: gunicorn becomes PID 1 and receives SIGTERM from Kubernetes.
CMD exec functions-framework --source "$FUNCTION_SOURCE" --target "$FUNCTION_TARGET" --port "${PORT:-8080}"
