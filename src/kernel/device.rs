//! What both kernels need from wgpu before their own pipelines: an adapter chosen from the environment, and a
//! compiled shader with its bind-group layout, pipelines and a sink for uncaptured device errors.

use std::sync::{Arc, Mutex};

/// Errors of acquiring an adapter or building a kernel; each kernel's own error type wraps them.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// No GPU adapter was found (lists what was enumerated).
    #[error("no GPU adapter found{0}")]
    NoAdapter(String),
    /// The device failed while creating resources.
    #[error("GPU kernel failed: {0}")]
    Device(String),
}

/// "name, Backend" of an adapter, as reports and notes show it.
pub fn describe_adapter(info: &wgpu::AdapterInfo) -> String {
    format!("{}, {:?}", info.name, info.backend)
}

/// Every adapter wgpu can see under the environment's `WGPU_BACKEND`, described for error messages.
pub fn enumerate_adapters() -> Vec<String> {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    describe_all(&pollster::block_on(
        instance.enumerate_adapters(wgpu::Backends::all()),
    ))
}

fn describe_all(adapters: &[wgpu::Adapter]) -> Vec<String> {
    adapters
        .iter()
        .map(|a| {
            let info = a.get_info();
            format!("{} ({:?}, {:?})", info.name, info.backend, info.device_type)
        })
        .collect()
}

fn adapter_list(found: &[String]) -> String {
    if found.is_empty() {
        "none (install a Vulkan driver, e.g. Mesa's lavapipe: apt-get install mesa-vulkan-drivers libvulkan1)"
            .to_string()
    } else {
        found.join("; ")
    }
}

fn device_err(what: &str, e: impl std::fmt::Display) -> DeviceError {
    DeviceError::Device(format!("{what}: {e}"))
}

/// Acquires an adapter from the environment (`WGPU_BACKEND`, `WGPU_ADAPTER_NAME`, `WGPU_POWER_PREF`) or the
/// default; `DeviceError::NoAdapter` lists what was enumerated.
pub(crate) fn acquire_adapter() -> Result<wgpu::Adapter, DeviceError> {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    // Same rules as `wgpu::util::initialize_adapter_from_env_or_default`, which panics when
    // WGPU_ADAPTER_NAME names no adapter; a user's typo deserves an error instead.
    let adapter = match std::env::var("WGPU_ADAPTER_NAME") {
        Ok(wanted) => {
            let wanted = wanted.to_lowercase();
            let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
            let found = describe_all(&adapters);
            adapters
                .into_iter()
                .find(|a| a.get_info().name.to_lowercase().contains(&wanted))
                .ok_or_else(|| {
                    DeviceError::NoAdapter(format!(
                        ": WGPU_ADAPTER_NAME={wanted:?} matches no adapter; enumerated: {}",
                        adapter_list(&found)
                    ))
                })?
        }
        Err(_) => {
            let options = wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::from_env().unwrap_or_default(),
                ..Default::default()
            };
            // Enumerate only on failure (for the message): each enumeration starts the drivers again.
            pollster::block_on(instance.request_adapter(&options)).map_err(|e| {
                let found = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
                let found = adapter_list(&describe_all(&found));
                DeviceError::NoAdapter(format!(" ({e}); enumerated: {found}"))
            })?
        }
    };
    Ok(adapter)
}

/// Opens a device on the adapter the environment chooses ([`acquire_adapter`]), asking for every limit the
/// adapter offers (large batches need its real storage-buffer limits).
pub(crate) fn open_device(
    label: &str,
) -> Result<(wgpu::Device, wgpu::Queue, wgpu::AdapterInfo), DeviceError> {
    let adapter = acquire_adapter()?;
    let info = adapter.get_info();
    let descriptor = wgpu::DeviceDescriptor {
        label: Some(label),
        required_limits: adapter.limits(),
        ..Default::default()
    };
    let (device, queue) = pollster::block_on(adapter.request_device(&descriptor)).map_err(|e| {
        device_err(
            &format!("requesting a device on {}", describe_adapter(&info)),
            e,
        )
    })?;
    Ok((device, queue, info))
}

/// The uncaptured device errors collected since the last call (the sink of [`BuiltKernel::errors`]), as
/// one error of `what`.
pub(crate) fn take_errors(errors: &Mutex<Vec<String>>, what: &str) -> Result<(), DeviceError> {
    let errors = match errors.lock() {
        Ok(mut v) => std::mem::take(&mut *v),
        Err(_) => vec!["error sink poisoned".to_string()],
    };
    if errors.is_empty() {
        Ok(())
    } else {
        Err(device_err(what, errors.join("; ")))
    }
}

/// Waits until the queue has executed everything submitted, then reports any device error as one of `what`.
pub(crate) fn wait(
    device: &wgpu::Device,
    errors: &Mutex<Vec<String>>,
    what: &str,
) -> Result<(), DeviceError> {
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| device_err(what, e))?;
    take_errors(errors, what)
}

/// Maps the first `bytes` of `staging` (the copy into it already submitted), waits for it, hands the
/// mapped bytes to `read` and unmaps. Device errors raised meanwhile are errors of `what`.
pub(crate) fn read_back<R>(
    device: &wgpu::Device,
    errors: &Mutex<Vec<String>>,
    staging: &wgpu::Buffer,
    bytes: u64,
    what: &str,
    read: impl FnOnce(&[u8]) -> R,
) -> Result<R, DeviceError> {
    let slice = staging.slice(..bytes);
    let (tx, rx) = std::sync::mpsc::channel();
    slice.map_async(wgpu::MapMode::Read, move |r| {
        // The receiver lives until after the wait below; a failed send only means we already gave up.
        let _ = tx.send(r);
    });
    wait(device, errors, what)?;
    match rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(device_err("mapping the staging buffer", e)),
        Err(e) => return Err(device_err("mapping the staging buffer", e)),
    }
    let out = {
        let view = slice
            .get_mapped_range()
            .map_err(|e| device_err("mapping the staging buffer", e))?;
        read(&view)
    };
    staging.unmap();
    Ok(out)
}

/// What a kernel builds once per device: a sink collecting uncaptured device errors, the bind-group layout
/// (binding i is a buffer of type `bindings[i]`, compute stage) and one compute pipeline per entry point.
pub(crate) struct BuiltKernel {
    /// Uncaptured device errors, drained after each dispatch.
    pub errors: Arc<Mutex<Vec<String>>>,
    /// The bind-group layout.
    pub layout: wgpu::BindGroupLayout,
    /// One pipeline per entry point, in the order asked.
    pub pipelines: Vec<wgpu::ComputePipeline>,
}

/// One pipeline to build: its entry point and the values of the shader's `override` constants.
pub(crate) type EntryPoint<'a> = (&'a str, &'a [(&'a str, f64)]);

/// Compiles `source` and builds its layout and pipelines; validation errors become `DeviceError::Device`.
pub(crate) fn build_kernel(
    device: &wgpu::Device,
    name: &str,
    source: &str,
    bindings: &[wgpu::BufferBindingType],
    entry_points: &[EntryPoint<'_>],
) -> Result<BuiltKernel, DeviceError> {
    let errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = Arc::clone(&errors);
    device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
        if let Ok(mut v) = sink.lock() {
            v.push(e.to_string());
        }
    }));
    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(&format!("{name}.wgsl")),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    });
    let entries: Vec<wgpu::BindGroupLayoutEntry> = bindings
        .iter()
        .enumerate()
        .map(|(i, &ty)| wgpu::BindGroupLayoutEntry {
            binding: i as u32,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty,
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        })
        .collect();
    let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some(&format!("{name} layout")),
        entries: &entries,
    });
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(&format!("{name} pipeline layout")),
        bind_group_layouts: &[Some(&layout)],
        immediate_size: 0,
    });
    let pipelines = entry_points
        .iter()
        .map(|&(entry, constants)| {
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: Some(&pipeline_layout),
                module: &module,
                entry_point: Some(entry),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants,
                    ..Default::default()
                },
                cache: None,
            })
        })
        .collect();
    if let Some(e) = pollster::block_on(scope.pop()) {
        return Err(device_err(&format!("building the {name} pipelines"), e));
    }
    Ok(BuiltKernel {
        errors,
        layout,
        pipelines,
    })
}
