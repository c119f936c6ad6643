"""What tests, benchmarks and infra checks share: Lambda loading as Lambda does it (``lambda_loader``), moto
(``aws``), real and generated images (``sample_faces``, ``images``), the hostile-input catalogue and its runners
(``hostile_inputs``, ``hostile_handlers``), a day of batch results (``timeline_day``) and ``make serve-demo``
(``serve_demo``). Development only: nothing here ships in a Lambda artifact."""
