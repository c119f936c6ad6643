"""MEAA's S3 -> DynamoDB batch scorer: images and videos dropped under ``incoming/`` get mood results.

``handler.handler`` is the Lambda entry point (template.yaml's BatchFunction); ``events`` turns an S3
notification into object references, one record at a time; ``processing`` scores one object and writes its
items through ``meaa.store``.
"""
