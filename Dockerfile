FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY callcenter ./callcenter
COPY web ./web
RUN pip install --no-cache-dir .
ENV CALLCENTER_WEB_DIR=/app/web
EXPOSE 8080
CMD ["callcenter", "serve"]
