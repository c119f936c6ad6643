"""The API's routers: upload and health always; results, the try-it page and docs as configured."""
