# deepfake-guard, GPU variant: NVIDIA's Triton image (DALI, TensorRT and Python backends; NVDEC) + our package.
# 25.10 or later: the tritonserver 2.51 inside the nvidia-pytriton wheel has CVEs fixed in 25.07/25.10.
#
#   docker build -t deepfake-guard:gpu .
#   # TensorRT plans only run on the GPU and TensorRT version that built them: build them on the serving machine
#   docker run --rm --gpus all -v $PWD/runs/tiny:/weights -v dfguard-models:/models deepfake-guard:gpu \
#       dfguard export /weights/best.pt --repository /models --target gpu
#   docker run --rm --gpus all -p 127.0.0.1:8001:8001 -v dfguard-models:/models deepfake-guard:gpu
ARG TRITON_VERSION=25.10

# trtexec comes from the TensorRT image of the same NGC release, so its TensorRT is the one Triton links.
FROM nvcr.io/nvidia/tensorrt:${TRITON_VERSION}-py3 AS tensorrt

FROM nvcr.io/nvidia/tritonserver:${TRITON_VERSION}-py3
COPY --from=tensorrt /usr/src/tensorrt/bin/trtexec /usr/local/bin/trtexec
# fail the build, naming them, if trtexec needs a TensorRT library this image lacks (e.g. the ONNX parser)
RUN ! ldd /usr/local/bin/trtexec | grep "not found"
ENV PIP_BREAK_SYSTEM_PACKAGES=1 PIP_NO_CACHE_DIR=1
WORKDIR /opt/deepfake-guard
COPY setup.py pyproject.toml README.md ./
COPY dfguard dfguard
COPY kernels kernels
COPY train train
COPY client client
# The train extra (export needs torch, about 3 GB with its own CUDA libraries; it also brings the serve extra,
# whose wheel server dfguard serve ignores in favour of the image's). DALI comes with the image's DALI backend
# (autoserialization uses it): of the gpu extra only numba-cuda and CuPy, built for the image's CUDA 13 (25.08+).
RUN python3 -m pip install ".[train]" "numba-cuda>=0.20" "cupy-cuda13x>=13.6"
# The repository: configs, Python-backend models and the DALI definition; dfguard export adds ONNX files, plans
# and serving_spec.json (a volume on /models keeps them).
COPY model_repository /models
# Listens on all interfaces inside the container; publish the ports on 127.0.0.1 (as above) unless you mean it.
EXPOSE 8000 8001 8002
CMD ["dfguard", "serve", "--target", "gpu", "--repository", "/models", "--host", "0.0.0.0"]
