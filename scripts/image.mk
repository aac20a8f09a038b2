# The container image (Containerfile; docs/deploy.md "Image"). Included from the root Makefile.
#   make image        build it with podman (installs podman/buildah/debootstrap/runc when
#                     missing; the Debian base is made once with debootstrap and cached in
#                     .cache/image/); prints the image's size and the build time
#   make image-test   the demo workload against the suite running from the image: one
#                     container per service, PostgreSQL and Redis on the host
# Neither is part of `make test` (a cold build takes minutes): tests/contract/test_image.py
# checks the Containerfile statically, and the built image when there is one.
# IMAGE=ref overrides the reference (default localhost/stella-orchestrator:<version>).

.PHONY: image image-test

## image: build the container image with podman (Debian base via debootstrap, cached in .cache/image/)
image:
	bash scripts/image.sh build

## image-test: run the demo workload against the suite started from the image (after make image)
image-test: venv services
	$(PY) scripts/image_test.py
