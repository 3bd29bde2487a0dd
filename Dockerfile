# Pilotplan's one image. web (gunicorn), worker and beat (celery) all run from it with different
# commands; docker-compose.yml shows how. Build: docker build -t pilotplan .
FROM python:3.11-slim

# STATIC_ROOT: static files live inside the image, collected below and served by WhiteNoise.
# WEB_CONCURRENCY: gunicorn's worker count (gunicorn reads it itself); override it per container.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    STATIC_ROOT=/app/staticfiles \
    WEB_CONCURRENCY=3

WORKDIR /app

# Dependencies before the code, so a code change does not reinstall them. Runtime pins only:
# test, lint and the embedded PostgreSQL/Redis wheels (requirements-dev.txt) stay out of the image.
# Every dependency ships a manylinux wheel (psycopg-binary brings its own libpq), so no compiler.
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .

# collectstatic only imports the settings, which refuse to load without a 50-character
# SECRET_KEY when DEBUG is false. This throwaway value exists only for this one RUN step (it is
# not an ENV, so no container ever starts with it); DEBUG=false selects the manifest storage that
# production reads, so the hashed file names and compressed copies are made here, once.
ARG BUILD_SECRET_KEY=collectstatic-at-build-time-only-never-used-to-sign-anything-at-all
RUN DEBUG=false SECRET_KEY="$BUILD_SECRET_KEY" python manage.py collectstatic --noinput \
    && python -m compileall -q .

# The code and static files stay owned by root: the app user can read them but not change them.
RUN useradd --system --user-group --uid 10001 --home-dir /app --no-create-home pilotplan
USER pilotplan

EXPOSE 8000

# No HEALTHCHECK here: worker and beat run this image too and serve no HTTP. The web service's
# probe is in docker-compose.yml. /dev/shm keeps gunicorn's worker heartbeat files off the
# container's overlay filesystem, where a slow disk can make healthy workers look dead.
CMD ["gunicorn", "pilotplan.wsgi:application", "--bind", "0.0.0.0:8000", \
     "--worker-tmp-dir", "/dev/shm", "--access-logfile", "-"]
