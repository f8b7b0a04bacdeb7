"""Development server entry: `python app.py` (HOST, PORT honoured). Production: `gunicorn app:app`."""

import logging
import os

from app import create_app
from app.gc_tuning import settle_heap

application = create_app()
settle_heap()  # once per process, after start-up (app/gc_tuning.py)

if __name__ == "__main__":
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "8000"))
    logging.getLogger(__name__).info("Serving AlgoMirror on http://%s:%d", host, port)
    application.run(host=host, port=port, debug=False, threaded=True, use_reloader=False)
