"""What both Lambda functions share on the AWS side, kept out of the ``meaa`` core (which imports no AWS package):
Powertools logging and metrics (``observability``) and boto3 clients with one retry policy (``clients``)."""
