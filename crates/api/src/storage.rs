//! Well-known names of volume binding and provisioning, shared by the PersistentVolume
//! controller, the scheduler and the kubelet's local-path provisioner.

/// The node the scheduler chose for the first pod of a delayed-binding claim.
pub const SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
/// Set on a claim by the PersistentVolume controller: the provisioner expected to make its
/// volume.
pub const STORAGE_PROVISIONER: &str = "volume.kubernetes.io/storage-provisioner";
/// On a claim, once the controller completed its side of the binding.
pub const BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";
/// On a claim or volume the controller (not the user) bound.
pub const BOUND_BY_CONTROLLER: &str = "pv.kubernetes.io/bound-by-controller";
/// On a dynamically provisioned volume: who made it.
pub const PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
/// The provisioner of wasmkube's node-local volumes (the default `local-path` class).
pub const LOCAL_PATH_PROVISIONER: &str = "wasmkube.io/local-path";
/// On a local-path volume: its node still has to remove the directory before the object goes.
pub const LOCAL_PATH_FINALIZER: &str = "wasmkube.io/local-path";
/// Marks the default StorageClass.
pub const DEFAULT_CLASS: &str = "storageclass.kubernetes.io/is-default-class";
/// The beta spelling of [`DEFAULT_CLASS`], still honoured by Kubernetes.
pub const DEFAULT_CLASS_BETA: &str = "storageclass.beta.kubernetes.io/is-default-class";
/// Keeps a claim that a pod still uses from going away (Kubernetes' StorageObjectInUseProtection).
pub const PVC_PROTECTION: &str = "kubernetes.io/pvc-protection";
/// Keeps a bound volume from going away.
pub const PV_PROTECTION: &str = "kubernetes.io/pv-protection";
