"""Stage 5 (optional): ship the compiled objects to a Kubernetes cluster. The only package that talks to a
Kubernetes API.

    kube.py      kubeconfig loading, one REST client, discovery, errors as one line each
    objects.py   the kinds mlc owns, apply order, ownership labels, content hash, protected kinds
    diff.py      field-level diff of a live object and its server dry-run apply result
    commands.py  plan / apply / delete / submit
"""
